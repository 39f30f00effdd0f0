import type { X509Certificate } from 'node:crypto';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { type SecureContext, type TLSSocket, connect as tlsConnect, createSecureContext } from 'node:tls';
import {
  type TlsProfileOptions,
  type TrustMaterial,
  attributesFromSubject,
  tlsProfile,
} from '../pki/index.js';
import { GatewayError } from '../errors/index.js';
import { trustedChain } from './peer-chain.js';
import { RelayError, type RelayFailureReason } from './relay-error.js';
import { type RemoteTlsFacts, type RemoteWhitelistView, judgeRemote } from './remote-verdict.js';
import { type SmtpReply, type SmtpReplyReader, relayReplyReader } from './smtp-reply-reader.js';

export interface ConnectRemoteOptions {
  readonly host: string;
  readonly port: number;
  /** Name sent as TLS SNI; default `host`. Never sent when it is an IP address (RFC 6066 §3). */
  readonly servername?: string;
  /** Our MTA's name for EHLO (RFC 5321 §4.1.1.1), e.g. the CN of our certificate. */
  readonly heloName: string;
  /** Our certificate (presented as the TLS client certificate), authorities and CRLs. */
  readonly trust: TrustMaterial;
  readonly profile: TlsProfileOptions;
  /** Deadline for connect, greeting, EHLO, STARTTLS and the handshake together. */
  readonly timeoutMs: number;
}

/** A remote MX after STARTTLS, not yet judged: what judgeRemote needs, and the session to go on. */
export interface RemoteTlsSession {
  readonly socket: TLSSocket;
  /** Replies on the TLS socket. */
  readonly reader: SmtpReplyReader;
  readonly greeting: SmtpReply;
  /** The EHLO reply before STARTTLS. */
  readonly ehlo: SmtpReply;
  readonly facts: RemoteTlsFacts;
  /** The certificate the remote presented, with its chain (`issuerCertificate`), as judged. */
  readonly peer?: X509Certificate;
}

export interface ConnectTrustedRemoteOptions extends ConnectRemoteOptions {
  readonly whitelist: RemoteWhitelistView;
  readonly recipientDomain: string;
}

/** A remote MX judged trustworthy for the recipient domain, greeted again over TLS. */
export interface TrustedRemoteSession {
  readonly socket: TLSSocket;
  readonly reader: SmtpReplyReader;
  readonly greeting: SmtpReply;
  /** The EHLO reply over TLS (RFC 3207 §4.2: the pre-TLS one must be discarded). */
  readonly ehlo: SmtpReply;
  /** Canonical subject DN of the remote certificate. */
  readonly dn: string;
  /** That certificate with its chain, checked again before a pooled connection is reused. */
  readonly peer?: X509Certificate;
}

/** Runs `work` under one deadline; on expiry, `abort` tears the connection down. */
async function withDeadline<T>(ms: number, abort: (err: RelayError) => void, work: () => Promise<T>) {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new RelayError('timeout');
      abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work(), expired]);
  } finally {
    clearTimeout(timer);
  }
}

function send(socket: Socket, command: string): void {
  socket.write(`${command}\r\n`);
}

/** Says goodbye without waiting for the answer (RFC 5321 §4.1.1.10), then closes. */
function quit(socket: Socket): void {
  if (socket.destroyed) return;
  socket.on('error', () => {});
  socket.end('QUIT\r\n');
  socket.setTimeout(1000, () => socket.destroy());
}

/** Refusals read in plain SMTP, before STARTTLS: the session can still end with QUIT. */
const POLITE_ENDINGS: ReadonlySet<RelayFailureReason> = new Set([
  'greeting_refused',
  'ehlo_refused',
  'starttls_unavailable',
  'starttls_refused',
]);

function advertises(ehlo: SmtpReply, keyword: string): boolean {
  // The first line is the server's name; each further line starts with an extension keyword.
  return ehlo.lines.slice(1).some((l) => l.split(' ')[0]?.toUpperCase() === keyword);
}

/** Resolves once `event` fires, or rejects with `fail(err)` on the first error. */
function settled<T extends Socket>(socket: T, event: string, fail: (err: Error) => RelayError): Promise<T> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(fail(err));
    socket.once('error', onError);
    socket.once(event, () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}

/**
 * One client context per trust material and profile: building it parses our key, the chain, every
 * authority and every CRL, which the relay profile showed costing more than the handshake itself.
 * A reload makes a new TrustMaterial, hence a new context for the next connection.
 */
const contexts = new WeakMap<TrustMaterial, Map<string, SecureContext>>();

function clientContext(trust: TrustMaterial, profile: TlsProfileOptions): SecureContext {
  let byProfile = contexts.get(trust);
  if (!byProfile) contexts.set(trust, (byProfile = new Map<string, SecureContext>()));
  const key = JSON.stringify(profile);
  let context = byProfile.get(key);
  if (!context) {
    context = createSecureContext({
      ...tlsProfile(profile),
      // MSSANTE.md: the same certificate identifies our MTA inbound and outbound.
      key: trust.key,
      cert: trust.cert,
      ca: [...trust.ca],
      crl: [...trust.crl],
    });
    byProfile.set(key, context);
  }
  return context;
}

function startTls(socket: Socket, o: ConnectRemoteOptions): TLSSocket {
  const servername = o.servername ?? o.host;
  return tlsConnect({
    socket,
    secureContext: clientContext(o.trust, o.profile),
    // We judge the certificate ourselves (judgeRemote) to give each refusal its own reason.
    rejectUnauthorized: false,
    // The MX host name comes from unauthenticated DNS; identity is the certificate DN registered
    // in the whitelist for the recipient domain, so a host-name mismatch is not an OpenSSL error.
    checkServerIdentity: () => undefined,
    ...(isIP(servername) === 0 ? { servername } : {}),
  });
}

/** Closes without caring about late errors (the session is over either way). */
function discard(socket: Socket | undefined): void {
  socket?.on('error', () => {});
  socket?.destroy();
}

/**
 * What judgeRemote needs from the handshake, and the certificate itself. Node 20 answers
 * getPeerX509Certificate (and getPeerCertificate) only once per socket, empty afterwards: the one
 * X509Certificate is kept for whoever needs it later.
 */
function factsOf(tls: TLSSocket, trust: TrustMaterial): { facts: RemoteTlsFacts; leaf?: X509Certificate } {
  const cert = tls.getPeerCertificate();
  const hasCert = cert !== null && typeof cert === 'object' && Object.keys(cert).length > 0;
  const leaf = tls.getPeerX509Certificate();
  const facts: RemoteTlsFacts = {
    secure: true,
    ...(hasCert ? { subject: attributesFromSubject(cert.subject) } : {}),
    authorized: tls.authorized,
    ...(tls.authorizationError ? { authorizationError: String(tls.authorizationError) } : {}),
    ...(leaf && !tls.authorized ? { issuedByTrustedAuthority: trustedChain(leaf, trust.authorities) } : {}),
  };
  return leaf ? { facts, leaf } : { facts };
}

/**
 * Opens an SMTP session to a remote MX and upgrades it with STARTTLS, presenting our certificate.
 * STARTTLS is mandatory (ARCHITECTURE.md §5): when it is not advertised we say QUIT and refuse with
 * `starttls_unavailable`; nothing else is ever sent in plain text. The certificate is not judged
 * here: the caller passes `facts` to judgeRemote (or uses connectTrustedRemote).
 */
export async function connectRemote(o: ConnectRemoteOptions): Promise<RemoteTlsSession> {
  if (!/^[^\s]+$/.test(o.heloName)) throw new GatewayError('INTERNAL', 'heloName must be one word');
  const where = { host: o.host, port: o.port };
  let plain: Socket | undefined;
  let tls: TLSSocket | undefined;
  let reader: SmtpReplyReader | undefined;
  const abort = (err: RelayError) => {
    reader?.fail(err);
    discard(tls);
    discard(plain);
  };
  try {
    return await withDeadline(o.timeoutMs, abort, async () => {
      // Our writes are whole already (the envelope in one, the message's end with the final dot):
      // Nagle would only hold the last segment of a message back until the remote's ACK.
      plain = netConnect({ ...where, noDelay: true });
      await settled(plain, 'connect', (cause) => new RelayError('connect_failed', where, { cause }));
      reader = relayReplyReader(plain);
      const greeting = await reader.next();
      if (greeting.code !== 220) throw new RelayError('greeting_refused', { ...where, reply: greeting.raw });
      send(plain, `EHLO ${o.heloName}`);
      const ehlo = await reader.next();
      if (ehlo.code !== 250) throw new RelayError('ehlo_refused', { ...where, reply: ehlo.raw });
      if (!advertises(ehlo, 'STARTTLS')) throw new RelayError('starttls_unavailable', where);
      send(plain, 'STARTTLS');
      const ready = await reader.next();
      if (ready.code !== 220) throw new RelayError('starttls_refused', { ...where, reply: ready.raw });
      if (reader.detach().unread)
        throw new RelayError('protocol_error', { ...where, reply: 'data after 220' });
      tls = startTls(plain, o);
      await settled(tls, 'secureConnect', (cause) => new RelayError('tls_failed', where, { cause }));
      // A remote MX asking to renegotiate gets an error rather than another handshake.
      tls.disableRenegotiation();
      const { facts, leaf } = factsOf(tls, o.trust);
      reader = relayReplyReader(tls);
      return { socket: tls, reader, greeting, ehlo, facts, ...(leaf ? { peer: leaf } : {}) };
    });
  } catch (err) {
    // A refusal in plain SMTP ends politely; anything else (timeout, TLS) just closes.
    const polite = err instanceof RelayError && POLITE_ENDINGS.has(err.reason);
    if (polite && plain) quit(plain);
    else abort(err instanceof RelayError ? err : new RelayError('protocol_error', where, { cause: err }));
    throw err;
  }
}

/**
 * connectRemote, then judgeRemote for the recipient domain: a refused remote gets QUIT and nothing
 * else; an accepted one is greeted again over TLS and handed back ready for MAIL FROM.
 */
export async function connectTrustedRemote(o: ConnectTrustedRemoteOptions): Promise<TrustedRemoteSession> {
  const session = await connectRemote(o);
  const verdict = judgeRemote(session.facts, o.whitelist, o.recipientDomain);
  const where = { host: o.host, port: o.port };
  if (!verdict.ok) {
    quit(session.socket);
    throw new RelayError(verdict.reason, {
      ...where,
      ...(verdict.dn === undefined ? {} : { dn: verdict.dn }),
    });
  }
  try {
    const ehlo = await withDeadline(
      o.timeoutMs,
      (err) => {
        session.reader.fail(err);
        discard(session.socket);
      },
      async () => {
        send(session.socket, `EHLO ${o.heloName}`);
        return session.reader.next();
      },
    );
    if (ehlo.code !== 250) throw new RelayError('ehlo_refused', { ...where, reply: ehlo.raw });
    return {
      socket: session.socket,
      reader: session.reader,
      greeting: session.greeting,
      ehlo,
      dn: verdict.dn,
      ...(session.peer ? { peer: session.peer } : {}),
    };
  } catch (err) {
    discard(session.socket);
    throw err;
  }
}
