import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';

/**
 * Hostile and legitimate traffic for the soak (issue #11 item 10), loopback only, every connection
 * bounded in time. A "hang" is a connection the gateway neither answered nor closed within
 * `HANG_MS` after the client stopped sending and half-closed (for a client that connects and never
 * speaks, within twice that: pre-authentication deadlines must end it).
 */

export const HANG_MS = 15_000;

export type Protocol = 'smtp' | 'imap';

export interface Listener {
  readonly name: string;
  readonly port: number;
  readonly protocol: Protocol;
  /** Implicit TLS. */
  readonly tls: boolean;
}

export interface FuzzTally {
  sessions: number;
  /** Connections refused or reset before anything (listener saturated, or limits). */
  refused: number;
  hangs: number;
  byCase: Record<string, number>;
}

/** The fuzz cases: what a client sends after connecting (and TLS, on an implicit TLS port). */
export const FUZZ_CASES: Record<string, (p: Protocol) => Buffer[]> = {
  'random-bytes': () => [randomBytes(512 + Math.floor(Math.random() * 4096))],
  'long-line': () => [Buffer.alloc(200_000, 'A'), Buffer.from('\r\n')],
  'bare-cr-lf': (p) => [
    Buffer.from(p === 'smtp' ? 'EHLO a\rMAIL FROM:<a@b>\nRCPT\r\r\n\n' : 'a1 CAPABILITY\ra2 NOOP\n\r\n'),
  ],
  'pipelined-garbage': (p) => [
    Buffer.from(
      Array.from({ length: 200 }, (_, i) =>
        p === 'smtp' ? `XYZZY ${i} ${'%'.repeat(i)}` : `t${i} F${'\0'.repeat(i % 5)}OO`,
      )
        .join('\r\n')
        .concat('\r\n'),
    ),
  ],
  'huge-literal': (p) => [
    Buffer.from(p === 'imap' ? 'a1 LOGIN {4294967296}\r\n' : 'BDAT 4294967296 LAST\r\n'),
  ],
  'unterminated-literal': (p) => [
    Buffer.from(
      p === 'imap'
        ? 'a1 LOGIN {100000}\r\n'
        : 'EHLO x\r\nMAIL FROM:<a@b.c>\r\nRCPT TO:<x@op.mssante.test>\r\nDATA\r\n',
    ),
    randomBytes(2000),
  ],
  'bad-base64': (p) => [
    Buffer.from(p === 'imap' ? 'a1 AUTHENTICATE PLAIN !!!*%%%%\r\n' : 'EHLO x\r\nAUTH PLAIN !!!*%%%%\r\n'),
  ],
  'tls-garbage': (p) => [
    Buffer.from(p === 'imap' ? 'a1 STARTTLS\r\n' : 'EHLO x\r\nSTARTTLS\r\n'),
    Buffer.concat([Buffer.from([0x16, 0x03, 0x01, 0x40, 0x00]), randomBytes(3000)]),
  ],
  'half-open': () => [],
};

interface ProbeResult {
  readonly refused: boolean;
  readonly hang: boolean;
}

/** One fuzz session: connect, send the case's chunks, half-close, wait for the server to close. */
export function fuzzSession(listener: Listener, kase: string, localAddress: string): Promise<ProbeResult> {
  const chunks = FUZZ_CASES[kase]!(listener.protocol);
  return new Promise((resolve) => {
    let connected = false;
    let settled = false;
    let hangTimer: NodeJS.Timeout | undefined;
    const done = (r: ProbeResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(hangTimer);
      socket.destroy();
      resolve(r);
    };
    const socket: net.Socket = listener.tls
      ? tls.connect({
          socket: net.connect({ host: '127.0.0.1', port: listener.port, localAddress }),
          rejectUnauthorized: false,
        })
      : net.connect({ host: '127.0.0.1', port: listener.port, localAddress });
    socket.on('error', () => done({ refused: !connected, hang: false }));
    socket.on('close', () => done({ refused: !connected, hang: false }));
    socket.on('data', () => undefined);
    const start = () => {
      connected = true;
      if (kase === 'half-open') {
        // Connect, say nothing, and never close our side: the server's deadlines must act.
        hangTimer = setTimeout(() => done({ refused: false, hang: true }), HANG_MS * 2);
        return;
      }
      for (const c of chunks) socket.write(c);
      socket.end();
      hangTimer = setTimeout(() => done({ refused: false, hang: true }), HANG_MS);
    };
    socket.once(listener.tls ? 'secureConnect' : 'connect', start);
  });
}

/** Runs `task` with at most `concurrency` in flight until `count` are done or the deadline passes. */
export async function pool(
  count: number,
  concurrency: number,
  deadline: number,
  task: (i: number) => Promise<void>,
): Promise<number> {
  let next = 0;
  let done = 0;
  const worker = async () => {
    for (let i = next++; i < count && Date.now() < deadline; i = next++) {
      await task(i);
      done += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, worker));
  return done;
}

/** A connect-close storm: bare connects destroyed at once (port scans, load-balancer probes). */
export async function connectCloseStorm(
  listener: Listener,
  count: number,
  deadline: number,
): Promise<number> {
  return pool(
    count,
    100,
    deadline,
    () =>
      new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: listener.port, localAddress: '127.0.0.4' });
        s.on('error', () => resolve());
        s.once('connect', () => {
          s.destroy();
          resolve();
        });
        s.once('close', () => resolve());
      }),
  );
}

/**
 * Slow-loris: `count` connections from one address, each sending one byte now and then, never a
 * full command. Returns a function that closes them all and reports how many were still open.
 */
export async function slowLoris(
  listener: Listener,
  count: number,
  localAddress: string,
): Promise<{ opened: number; close: () => number }> {
  const sockets: net.Socket[] = [];
  let opened = 0;
  await pool(
    count,
    100,
    Date.now() + 60_000,
    () =>
      new Promise<void>((resolve) => {
        const s = net.connect({ host: '127.0.0.1', port: listener.port, localAddress });
        s.on('error', () => resolve());
        s.on('data', () => undefined);
        s.once('connect', () => {
          opened += 1;
          sockets.push(s);
          resolve();
        });
        s.once('close', () => resolve());
      }),
  );
  const drip = setInterval(() => {
    for (const s of sockets) if (!s.destroyed) s.write(listener.protocol === 'smtp' ? 'E' : 'a');
  }, 5_000);
  return {
    opened,
    close: () => {
      clearInterval(drip);
      const alive = sockets.filter((s) => !s.destroyed).length;
      for (const s of sockets) s.destroy();
      return alive;
    },
  };
}

/**
 * Time until the first line from the server (greeting), or -1 when none came in `timeoutMs`. With
 * `tlsOptions` the connection is implicit TLS and the time includes the handshake.
 */
export function greetingMs(
  port: number,
  localAddress: string,
  timeoutMs = 10_000,
  tlsOptions?: tls.ConnectionOptions,
): Promise<number> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const raw = net.connect({ host: '127.0.0.1', port, localAddress });
    const s = tlsOptions ? tls.connect({ ...tlsOptions, socket: raw }) : raw;
    const timer = setTimeout(() => finish(-1), timeoutMs);
    const finish = (ms: number) => {
      clearTimeout(timer);
      s.destroy();
      resolve(ms);
    };
    s.on('error', () => finish(-1));
    s.once('data', () => finish(Math.round(performance.now() - t0)));
  });
}
