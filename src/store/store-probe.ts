import net from 'node:net';
import type { ImapEndpoint, LmtpEndpoint } from './store-endpoints.js';

export interface StoreHealth {
  readonly imap: boolean;
  readonly lmtp: boolean;
}

export interface ProbeOptions {
  /** Budget for connecting and reading the greeting. Default 2 s. */
  readonly timeoutMs?: number;
}

/**
 * Connects, reads the first line of the greeting, checks it, says goodbye and closes. Never
 * throws: any failure (refused, timeout, unexpected greeting) is `false`.
 */
function probeGreeting(
  connect: net.NetConnectOpts,
  accept: (line: string) => boolean,
  farewell: string,
  timeoutMs: number,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ ...connect, timeout: timeoutMs });
    let received = '';
    const finish = (ok: boolean): void => {
      socket.removeAllListeners('data');
      if (ok) socket.end(farewell);
      socket.destroySoon();
      resolve(ok);
    };
    socket.on('error', () => finish(false));
    socket.on('timeout', () => {
      finish(false);
      socket.destroy();
    });
    socket.on('close', () => resolve(false));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      const eol = received.indexOf('\n');
      if (eol >= 0) finish(accept(received.slice(0, eol)));
      else if (received.length > 4096) finish(false);
    });
  });
}

/** IMAP answers `* OK` when it is ready for a login (RFC 9051 §7.1.1; PREAUTH or BYE are not). */
export function probeImap(endpoint: ImapEndpoint, options: ProbeOptions = {}): Promise<boolean> {
  return probeGreeting(
    { host: endpoint.host, port: endpoint.port },
    (line) => /^\* OK\b/i.test(line),
    'P LOGOUT\r\n',
    options.timeoutMs ?? 2_000,
  );
}

/** LMTP greets like SMTP: 220 when the service is ready (RFC 2033 §4, RFC 5321 §4.2). */
export function probeLmtp(endpoint: LmtpEndpoint, options: ProbeOptions = {}): Promise<boolean> {
  const connect: net.NetConnectOpts =
    'path' in endpoint ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port };
  return probeGreeting(connect, (line) => /^220[ -]/.test(line), 'QUIT\r\n', options.timeoutMs ?? 2_000);
}

/** Whether the store's IMAP and LMTP services greet as they should, with short timeouts. */
export async function checkStoreHealth(
  imap: ImapEndpoint,
  lmtp: LmtpEndpoint,
  options: ProbeOptions = {},
): Promise<StoreHealth> {
  const [imapOk, lmtpOk] = await Promise.all([probeImap(imap, options), probeLmtp(lmtp, options)]);
  return { imap: imapOk, lmtp: lmtpOk };
}
