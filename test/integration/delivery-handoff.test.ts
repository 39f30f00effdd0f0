import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { Gateway } from '../../src/app/index.js';
import type { DestinationState, SpoolEnvelope } from '../../src/delivery/index.js';
import { createLogger } from '../../src/observability/index.js';
import { PEER_DOMAIN, scratchDir, testConfig, uniqueBal } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';
import { peerMx } from '../helpers/smtp-clients.js';

const system = { kind: 'system' as const, id: 'test' };

/**
 * A store that speaks LMTP on loopback and holds its answer to each message's final dot until the
 * test releases it (an attempt that lasts as long as the test wants), then answers `reply`.
 */
async function slowStore(reply: string): Promise<{
  /** The Unix socket it listens on (the shared store's LMTP is one too, so the setting merges). */
  socket: string;
  transactions: number;
  /** Resolves when a final dot arrived and its answer is held. */
  held: Promise<void>;
  release(): void;
  /** Whether every connection the gateway opened is closed. */
  allClosed(): boolean;
  close(): Promise<void>;
}> {
  const sockets = new Set<net.Socket>();
  const open = new Set<net.Socket>();
  let transactions = 0;
  let onHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (onHeld = resolve));
  let released = false;
  const waiting: Array<() => void> = [];
  const server = net.createServer((socket) => {
    sockets.add(socket);
    open.add(socket);
    socket.on('close', () => open.delete(socket));
    socket.on('error', () => undefined);
    socket.write('220 slow LMTP\r\n');
    let inData = false;
    let rcpts = 0;
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let eol = buffered.indexOf('\r\n'); eol >= 0; eol = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, eol);
        buffered = buffered.slice(eol + 2);
        if (inData) {
          if (line !== '.') continue;
          inData = false;
          transactions += 1;
          const n = rcpts;
          rcpts = 0;
          const answer = () => socket.write(`${reply}\r\n`.repeat(n));
          if (released) answer();
          else {
            waiting.push(answer);
            onHeld();
          }
        } else if (line.startsWith('LHLO')) socket.write('250-slow\r\n250 ENHANCEDSTATUSCODES\r\n');
        else if (line.startsWith('RCPT')) {
          rcpts += 1;
          socket.write('250 2.1.5 OK\r\n');
        } else if (line === 'DATA') {
          inData = true;
          socket.write('354 go\r\n');
        } else if (line === 'QUIT') socket.end('221 2.0.0 bye\r\n');
        else socket.write('250 2.0.0 OK\r\n');
      }
    });
  });
  const socketPath = path.join(scratchDir('slow-lmtp'), 'lmtp.sock');
  server.listen(socketPath);
  await once(server, 'listening');
  return {
    socket: socketPath,
    get transactions() {
      return transactions;
    },
    held,
    release: () => {
      released = true;
      for (const answer of waiting.splice(0)) answer();
    },
    allClosed: () => open.size === 0,
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

/** A gateway whose store's LMTP is the socket `lmtp`, logging its JSON lines to `lines`. */
async function gatewayWith(
  lmtp: string,
  delivery: Record<string, unknown>,
  lines: string[] = [],
): Promise<Gateway> {
  const dovecot = inject('dovecot');
  const config = testConfig({
    overrides: {
      store: {
        imap: dovecot.imap,
        lmtp: { path: lmtp },
        masterUser: dovecot.masterUser,
      },
      delivery,
    },
  });
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      done();
    },
  });
  return Gateway.start(config, { logger: createLogger({ level: 'info' }, sink) });
}

async function sendOne(gw: Gateway, to: string): Promise<void> {
  const transport = peerMx(gw.addresses.mx!.port);
  const info = await transport.sendMail({
    envelope: { from: `lab@${PEER_DOMAIN}`, to: [to] },
    raw: `From: <lab@${PEER_DOMAIN}>\r\nTo: <${to}>\r\nSubject: slow\r\nMessage-ID: <${randomUUID()}@${PEER_DOMAIN}>\r\n\r\nbody\r\n`,
  });
  transport.close();
  expect(info.response).toMatch(/^250 /);
}

describe('local delivery handed off after commit', () => {
  it('a safety-net job that comes due during a long attempt keeps the backoff the attempt set', async () => {
    const store = await slowStore('451 4.2.0 mailbox busy, try later');
    // The net comes due 1 s after commit, long before the store answers; the retry is a minute away.
    const admin = new Redis(inject('redisUrl'));
    const gw = await gatewayWith(store.socket, {
      lockSeconds: 1,
      retryInitialSeconds: 60,
      retryMaxSeconds: 120,
    });
    try {
      const to = uniqueBal('slow');
      await gw.registry.create({ address: to, type: 'PER', owner: '810000000001' }, system);
      const deferred = new Promise<[SpoolEnvelope, DestinationState]>((resolve) =>
        gw.delivery.once('deferred', (e: SpoolEnvelope, s: DestinationState) => resolve([e, s])),
      );
      await sendOne(gw, to);
      await store.held;
      // The safety net came due while the attempt waits for the store, and a worker took it.
      const active = await eventually(
        () => gw.delivery.list({ states: ['active'] }),
        (jobs) => jobs.length === 1,
      );
      expect(active).toHaveLength(1);
      store.release();
      const [envelope, state] = await deferred;
      expect(state.recipients[0]).toMatchObject({ state: 'pending', attempts: 1 });
      const nextAttemptAt = Date.parse(state.nextAttemptAt!);
      expect(nextAttemptAt - Date.now()).toBeGreaterThan(30_000);
      // The job waits until the attempt's retry time, not a few seconds: its time in BullMQ's
      // delayed set (score = time × 4096) is the attempt's nextAttemptAt.
      const prefix = `${gw.config.redis.prefix}bull:local@${gw.config.node.id}`;
      const score = await eventually(
        () => admin.zscore(`${prefix}:delayed`, `${envelope.id}~local`),
        (found) => found !== null,
      );
      expect(Math.floor(Number(score) / 4096)).toBeGreaterThanOrEqual(nextAttemptAt - 1000);
      expect((await gw.delivery.show(`${envelope.id}~local`)).state).toBe('delayed');
      expect(store.transactions).toBe(1);
    } finally {
      await gw.stop();
      await admin.quit();
      await store.close();
    }
  });

  it('a brief Redis drop during a stop still lets the delivery in flight finish and closes the LMTP connections', async () => {
    const store = await slowStore('250 2.0.0 saved');
    const lines: string[] = [];
    const gw = await gatewayWith(store.socket, {}, lines);
    const dataDir = gw.config.dataDir;
    const admin = new Redis(inject('redisUrl'), { lazyConnect: true });
    let stopping: Promise<void> | undefined;
    try {
      await admin.connect();
      const to = uniqueBal('stopping');
      await gw.registry.create({ address: to, type: 'PER', owner: '810000000001' }, system);
      await sendOne(gw, to);
      await store.held; // the attempt is in flight: the store has the message, no answer yet
      const id = await gw.backends.redis.client('ID');
      const reconnecting = once(gw.backends.redis, 'reconnecting');
      stopping = gw.stop();
      await admin.client('KILL', 'ID', String(id)); // Redis drops the gateway's main connection
      await reconnecting;
      // The stop gave up waiting for the queue's Redis step; the attempt is still held.
      await eventually(
        () =>
          Promise.resolve(
            lines.some((l) => l.includes('"gateway.stop.abandoned"') && l.includes('"delivery"')),
          ),
        (seen) => seen,
      );
      store.release();
      await stopping;
      // The attempt ended and recorded its outcome before the stop returned: delivered, entry removed.
      expect(readdirSync(path.join(dataDir, 'spool', 'queue'))).toEqual([]);
      expect(store.transactions).toBe(1);
      // QUIT was sent on every pooled connection: the store sees them all close.
      expect(
        await eventually(
          () => Promise.resolve(store.allClosed()),
          (closed) => closed,
          10_000,
        ),
      ).toBe(true);
    } finally {
      store.release();
      await (stopping ?? gw.stop());
      await admin.quit();
      await store.close();
    }
  });
});
