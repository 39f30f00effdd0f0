import { randomInt } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { TEST_PORTS } from './free-port.js';
import { pkiFile } from './gateway.js';

/** A message as the remote operator received it. */
export interface ReceivedMessage {
  readonly from: string;
  readonly to: readonly string[];
  /** The exact bytes after SMTP's dot-unstuffing. */
  readonly raw: Buffer;
  /** Subject CN of the client certificate our relay presented, and whether it verified. */
  readonly clientCn: unknown;
  readonly clientAuthorized: boolean;
  /** MAIL FROM and RCPT TO parameters (RFC 3461). */
  readonly mailParams: Record<string, unknown>;
  readonly rcptParams: ReadonlyArray<Record<string, unknown>>;
  readonly connection: string;
}

/** What the next transactions should meet (consumed in order, one per transaction). */
/** The Message-ID a peer received (`?` when the message has none). */
export function messageIdOf(m: ReceivedMessage): string {
  return /^Message-ID:\s*(<[^>]+>)/im.exec(m.raw.toString('latin1'))?.[1] ?? '?';
}

export type PeerFault =
  | { readonly kind: 'reject-data'; readonly code: number; readonly message: string }
  /** Reads the whole message, then closes the connection without a reply. */
  | { readonly kind: 'drop-after-data' }
  /**
   * Reads the whole message and keeps it, as a real MTA commits what it fully received, but holds
   * the `250` until `release()` is called: a client that dies meanwhile never learns that the
   * message was taken, and sends it again (the duplicate window SMTP cannot close, RFC 1047).
   */
  | {
      readonly kind: 'hold-data';
      readonly held: (release: () => void, message: ReceivedMessage) => void;
    };

export interface PeerOperator {
  readonly port: number;
  readonly messages: ReceivedMessage[];
  /** Number of TLS sessions opened by clients. */
  readonly sessions: () => number;
  /** RCPT replies by address: `{ code, message }` refuses that recipient. */
  readonly refuse: Map<string, { code: number; message: string }>;
  readonly faults: PeerFault[];
  /** Greeting refusals left (421 at connect). */
  greetingRefusals: number;
  /** Resolves when `count` messages have arrived in all. */
  received(count: number, timeoutMs?: number): Promise<ReceivedMessage[]>;
  /**
   * Resolves once every TLS session opened so far has closed: after a client's death, nothing it
   * sent is still to be read (a socket closes only after its last bytes were processed).
   */
  quiet(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
  /** Listens again on the same port (after stop: connection refused meanwhile). */
  restart(): Promise<void>;
}

export interface PeerOperatorOptions {
  /** The dev-PKI leaf the peer presents: peer-trusted, peer-unlisted, peer-revoked... */
  readonly leaf: string;
  /** Advertise DSN (RFC 3461). Default true. */
  readonly dsn?: boolean;
  readonly port?: number;
  /** Close each session after this many transactions (like a busy MX). */
  readonly size?: number;
}

/**
 * Another MSSanté operator's MX, for relay tests: a real smtp-server with a certificate from the
 * development PKI, requesting our client certificate, recording every message byte for byte, and
 * scripted to refuse recipients, drop or stall transactions on demand.
 */
export async function startPeerOperator(options: PeerOperatorOptions): Promise<PeerOperator> {
  const messages: ReceivedMessage[] = [];
  const waiters: Array<() => void> = [];
  const refuse = new Map<string, { code: number; message: string }>();
  const faults: PeerFault[] = [];
  let sessions = 0;
  const open = new Set<TLSSocket>();
  const closeWaiters: Array<() => void> = [];
  const peer: PeerOperator = {
    port: 0,
    messages,
    sessions: () => sessions,
    refuse,
    faults,
    greetingRefusals: 0,
    received: (count, timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          if (messages.length < count) return false;
          clearTimeout(timer);
          resolve(messages.slice(0, count));
          return true;
        };
        const timer = setTimeout(
          () => reject(new Error(`peer received ${messages.length} of ${count} messages`)),
          timeoutMs,
        );
        const waiter = () => {
          if (!check()) waiters.push(waiter);
        };
        waiter();
      }),
    quiet: (timeoutMs = 60_000) =>
      new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`peer still has ${open.size} open sessions after ${timeoutMs} ms`)),
          timeoutMs,
        );
        const waiter = () => {
          if (open.size > 0) closeWaiters.push(waiter);
          else {
            clearTimeout(timer);
            resolve();
          }
        };
        waiter();
      }),
    stop: () => Promise.resolve(),
    restart: () => Promise.resolve(),
  };
  const build = () =>
    new SMTPServer({
      secure: false,
      key: pkiFile(`${options.leaf}.key`),
      cert: pkiFile(`${options.leaf}.chain.pem`),
      ca: [pkiFile('ca/root.crt'), pkiFile('ca/org.crt')],
      requestCert: true,
      rejectUnauthorized: false,
      authOptional: true,
      disabledCommands: ['AUTH'],
      hideDSN: options.dsn === false,
      hideENHANCEDSTATUSCODES: false,
      ...(options.size ? { size: options.size } : {}),
      logger: false,
      onConnect(_session, cb) {
        if (peer.greetingRefusals > 0) {
          peer.greetingRefusals -= 1;
          const err = Object.assign(new Error('Too busy, try later'), { responseCode: 421 });
          cb(err);
          return;
        }
        cb();
      },
      onSecure(socket, session, cb) {
        sessions += 1;
        const tls = socket as TLSSocket;
        sockets.set(session.id, tls);
        open.add(tls);
        tls.once('close', () => {
          open.delete(tls);
          for (const w of closeWaiters.splice(0)) w();
        });
        cb();
      },
      onRcptTo(address, _session, cb) {
        const r = refuse.get(address.address);
        if (r) cb(Object.assign(new Error(r.message), { responseCode: r.code }));
        else cb();
      },
      onData(stream, session, cb) {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          const fault = faults.shift();
          if (fault?.kind === 'drop-after-data') {
            socketOf(session)?.destroy();
            return;
          }
          if (fault?.kind === 'reject-data') {
            cb(Object.assign(new Error(fault.message), { responseCode: fault.code }));
            return;
          }
          const socket = socketOf(session);
          if (!socket || socket.destroyed) return; // the client died before the end of DATA
          const cert = socket.getPeerCertificate();
          const message: ReceivedMessage = {
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
            to: session.envelope.rcptTo.map((r) => r.address),
            raw: Buffer.concat(chunks),
            clientCn: cert?.subject?.CN,
            clientAuthorized: socket.authorized,
            mailParams: session.envelope.mailFrom ? { ...session.envelope.mailFrom.args } : {},
            rcptParams: session.envelope.rcptTo.map((r) => ({ ...(r.args || {}) })),
            connection: session.id,
          };
          // Kept before the reply: what happens to the reply cannot take the message back.
          messages.push(message);
          for (const w of waiters.splice(0)) w();
          const reply = () => {
            if (!socket.destroyed) cb(null, 'Ok: queued');
          };
          if (fault?.kind === 'hold-data') fault.held(reply, message);
          else reply();
        });
      },
    });
  const sockets = new Map<string, TLSSocket>();
  const socketOf = (session: SMTPServerSession) => sockets.get(session.id);
  let server = build();
  const listenOnce = async (port: number) => {
    server = build();
    // A connection reset by the gateway (killed by a crash test) is an error of that connection,
    // which smtp-server re-emits on the server: expected here, it must not end the test process.
    server.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      server.server.once('error', reject);
      server.listen(port, '127.0.0.1', () => resolve());
    });
    return (server.server.address() as AddressInfo).port;
  };
  /**
   * `restart()` listens again on the same port, which the gateway's configuration names. A port
   * from the kernel's ephemeral range can be taken meanwhile as the local port of some other test's
   * outgoing connection (EADDRINUSE seen in a loaded campaign run), so the peer picks its port below
   * that range, and waits out a port still taken.
   */
  const listen = async (port: number | 'pick') => {
    for (let attempt = 0; ; attempt++) {
      const tried = port === 'pick' ? TEST_PORTS.low + randomInt(TEST_PORTS.high - TEST_PORTS.low) : port;
      try {
        return await listenOnce(tried);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || attempt >= 100) throw err;
        if (port !== 'pick') await new Promise((r) => setTimeout(r, 300));
      }
    }
  };
  const port = await listen(options.port ?? 'pick');
  const stop = () =>
    new Promise<void>((resolve) => {
      for (const socket of sockets.values()) socket.destroy();
      sockets.clear();
      server.close(() => resolve());
    });
  Object.assign(peer, { port, stop, restart: async () => void (await listen(port)) });
  return peer;
}
