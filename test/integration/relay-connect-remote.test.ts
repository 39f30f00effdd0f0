import { readFileSync } from 'node:fs';
import net, { type AddressInfo } from 'node:net';
import path from 'node:path';
import type { TLSSocket } from 'node:tls';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { systemClock } from '../../src/shared/index.js';
import { type Whitelist, loadWhitelistFile } from '../../src/directory/index.js';
import {
  DEV_PKI_DN,
  type TrustMaterial,
  devPkiSettings,
  loadTrustMaterial,
  normalizeDn,
} from '../../src/pki/index.js';
import { RelayError, connectRemote, connectTrustedRemote } from '../../src/relay/index.js';
import { freePort } from '../helpers/free-port.js';

const PEER_DOMAIN = 'peer.mssante.test';
const HELO = 'mx.op.mssante.test';
const PROFILE = { minVersion: 'TLSv1.2', allowCbc: false } as const;

let trust: TrustMaterial;
let whitelist: Whitelist;
const closers: Array<() => Promise<void>> = [];

const pki = (file: string) => readFileSync(path.join(inject('pkiDir'), file), 'utf8');

beforeAll(async () => {
  const settings = devPkiSettings(inject('pkiDir'));
  trust = loadTrustMaterial(settings.tls).material;
  whitelist = await loadWhitelistFile(settings.whitelistFile, systemClock, 0);
});
afterAll(async () => {
  await Promise.all(closers.map((close) => close()));
});

/** What a remote MX saw of us. */
interface PeerObservations {
  /** Resolves in onSecure: whether our client certificate verified against the peer's CAs. */
  readonly secured: Promise<{ authorized: boolean; cn: unknown }>;
  /** Resolves when the session ends, with the number of MAIL FROM commands received. */
  readonly closed: Promise<{ mails: number }>;
}

/** A real remote MX (smtp-server) presenting the certificate of a development PKI leaf. */
async function startPeer(leaf: string): Promise<{ port: number; observe: () => PeerObservations }> {
  let onSecure: (v: { authorized: boolean; cn: unknown }) => void = () => {};
  let onClose: (v: { mails: number }) => void = () => {};
  let mails = 0;
  const server = new SMTPServer({
    secure: false,
    key: pki(`${leaf}.key`),
    cert: pki(`${leaf}.chain.pem`),
    ca: [...trust.ca],
    crl: [...trust.crl],
    requestCert: true,
    rejectUnauthorized: false,
    authOptional: true,
    logger: false,
    onSecure(socket, _session, cb) {
      const tls = socket as TLSSocket;
      onSecure({ authorized: tls.authorized, cn: tls.getPeerCertificate().subject?.CN });
      cb();
    },
    onMailFrom(_address, _session, cb) {
      mails += 1;
      cb();
    },
    onClose() {
      onClose({ mails });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const { port } = server.server.address() as AddressInfo;
  const observe = (): PeerObservations => {
    mails = 0;
    return {
      secured: new Promise((resolve) => (onSecure = resolve)),
      closed: new Promise((resolve) => (onClose = resolve)),
    };
  };
  return { port, observe };
}

/** A raw SMTP peer following a script: records every line we send, answers as told. */
async function startScripted(answer: (line: string) => string | undefined, greeting?: string) {
  const received: string[] = [];
  let ended: () => void = () => {};
  const closed = new Promise<void>((resolve) => (ended = resolve));
  const server = net.createServer((socket) => {
    if (greeting !== undefined) socket.write(greeting);
    let buffer = '';
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let eol: number;
      while ((eol = buffer.indexOf('\r\n')) >= 0) {
        const line = buffer.slice(0, eol);
        buffer = buffer.slice(eol + 2);
        received.push(line);
        const reply = answer(line);
        if (reply !== undefined) socket.write(reply);
        if (line === 'QUIT') socket.end();
      }
    });
    socket.on('error', () => {});
    socket.on('close', () => ended());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { port: (server.address() as AddressInfo).port, received, closed };
}

const ehloWithout = (line: string) =>
  line.startsWith('EHLO ') ? '250-mx.plain.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n' : '221 bye\r\n';

function options(port: number, recipientDomain = PEER_DOMAIN) {
  return {
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    heloName: HELO,
    trust,
    profile: PROFILE,
    timeoutMs: 5000,
    whitelist,
    recipientDomain,
  };
}

async function refusal(p: Promise<unknown>): Promise<RelayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

describe('connectTrustedRemote: the remote MX must be the operator registered for the domain', () => {
  it('accepts peer-trusted for peer.mssante.test, presenting our certificate as client', async () => {
    const peer = await startPeer('peer-trusted');
    const seen = peer.observe();
    const session = await connectTrustedRemote(options(peer.port));
    expect(session.dn).toBe(normalizeDn(DEV_PKI_DN['peer-trusted']));
    expect(session.greeting.code).toBe(220);
    expect(session.ehlo.code).toBe(250);
    // The peer verified our gateway certificate against the root and CRLs.
    expect(await seen.secured).toEqual({ authorized: true, cn: 'localhost' });
    // The session is ready for the transaction, over TLS.
    expect(session.socket.encrypted).toBe(true);
    session.socket.write('MAIL FROM:<sender@op.mssante.test>\r\n');
    expect((await session.reader.next()).code).toBe(250);
    session.socket.end('QUIT\r\n');
    expect(await seen.closed).toEqual({ mails: 1 });
  });

  it.each([
    ['peer-unlisted', PEER_DOMAIN, 'dn_not_whitelisted_for_domain', false],
    ['peer-revoked', PEER_DOMAIN, 'cert_revoked', false],
    ['peer-expired', PEER_DOMAIN, 'cert_expired', false],
    ['peer-foreign', PEER_DOMAIN, 'cert_untrusted', false],
    // A whitelisted operator, but not the one registered for the recipient's domain.
    ['gateway', PEER_DOMAIN, 'dn_not_whitelisted_for_domain', false],
    ['peer-trusted', 'op.mssante.test', 'dn_not_whitelisted_for_domain', false],
    ['peer-trusted', 'nowhere.mssante.test', 'domain_not_whitelisted', false],
  ])('refuses %s for %s: %s', async (leaf, domain, reason, temporary) => {
    const peer = await startPeer(leaf);
    const seen = peer.observe();
    const err = await refusal(connectTrustedRemote(options(peer.port, domain)));
    expect(err).toMatchObject({ reason, temporary, details: { host: '127.0.0.1', port: peer.port } });
    // Nothing but QUIT follows the handshake.
    expect(await seen.closed).toEqual({ mails: 0 });
  });

  it.each([
    ['peer-trusted', { authorized: true }],
    [
      'peer-revoked',
      { authorized: false, authorizationError: 'CERT_REVOKED', issuedByTrustedAuthority: true },
    ],
    // Whatever OpenSSL's last error on a foreign chain, the leaf is known not to be ours.
    ['peer-foreign', { authorized: false, issuedByTrustedAuthority: false }],
  ])('reports the facts of %s for judgeRemote without judging (connectRemote)', async (leaf, facts) => {
    const peer = await startPeer(leaf);
    const seen = peer.observe();
    const session = await connectRemote(options(peer.port));
    expect(session.facts).toMatchObject({ secure: true, ...facts });
    expect(session.ehlo.lines).toContain('STARTTLS');
    session.socket.end('QUIT\r\n');
    expect(await seen.closed).toEqual({ mails: 0 });
  });
});

describe('connectRemote: STARTTLS or nothing', () => {
  it('refuses a server that does not offer STARTTLS, sending only EHLO and QUIT', async () => {
    const peer = await startScripted(ehloWithout, '220 mx.plain.test ESMTP\r\n');
    const err = await refusal(connectTrustedRemote(options(peer.port)));
    expect(err).toMatchObject({ reason: 'starttls_unavailable', temporary: true });
    await peer.closed;
    expect(peer.received).toEqual([`EHLO ${HELO}`, 'QUIT']);
  });

  it('refuses when STARTTLS is advertised but refused', async () => {
    const peer = await startScripted(
      (line) =>
        line.startsWith('EHLO ')
          ? '250-mx.test\r\n250 STARTTLS\r\n'
          : line === 'STARTTLS'
            ? '454 4.7.0 TLS not available\r\n'
            : '221 bye\r\n',
      '220 mx.test ESMTP\r\n',
    );
    const err = await refusal(connectTrustedRemote(options(peer.port)));
    expect(err).toMatchObject({
      reason: 'starttls_refused',
      details: { reply: '454 4.7.0 TLS not available' },
    });
    await peer.closed;
    expect(peer.received).toEqual([`EHLO ${HELO}`, 'STARTTLS', 'QUIT']);
  });

  it('refuses replies injected after 220 to STARTTLS (RFC 3207 §5)', async () => {
    const peer = await startScripted(
      (line) =>
        line.startsWith('EHLO ') ? '250-mx.test\r\n250 STARTTLS\r\n' : '220 go ahead\r\n250 injected\r\n',
      '220 mx.test ESMTP\r\n',
    );
    const err = await refusal(connectTrustedRemote(options(peer.port)));
    expect(err.reason).toBe('protocol_error');
    await peer.closed;
    expect(peer.received).toEqual([`EHLO ${HELO}`, 'STARTTLS']);
  });

  it('gives up on a greeting refused with 554', async () => {
    const peer = await startScripted(() => '221 bye\r\n', '554 5.3.2 not accepting mail\r\n');
    const err = await refusal(connectTrustedRemote(options(peer.port)));
    expect(err).toMatchObject({
      reason: 'greeting_refused',
      details: { reply: '554 5.3.2 not accepting mail' },
    });
    await peer.closed;
    expect(peer.received).toEqual(['QUIT']);
  });

  it('times out on a server that never greets', async () => {
    const peer = await startScripted(() => undefined);
    const err = await refusal(connectTrustedRemote({ ...options(peer.port), timeoutMs: 300 }));
    expect(err).toMatchObject({ reason: 'timeout', temporary: true });
    await peer.closed;
    expect(peer.received).toEqual([]);
  });

  it('reports an unreachable host as connect_failed', async () => {
    const port = await freePort();
    const err = await refusal(connectTrustedRemote(options(port)));
    expect(err).toMatchObject({ reason: 'connect_failed', temporary: true });
  });
});
