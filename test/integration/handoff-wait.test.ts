import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { copiesIn, createBal, expectEveryAckedDelivered, queueEntries } from '../helpers/delivery-burst.js';
import { PEER_DOMAIN, scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { type LmtpGate, startLmtpGate } from '../helpers/lmtp-gate.js';
import { eventually } from '../helpers/mailbox.js';
import { queueEvents } from '../helpers/queue-events.js';
import { peerMx } from '../helpers/smtp-clients.js';

/**
 * Destinations committed while every hand-off slot is taken wait in memory and are attempted as
 * slots free up (ARCHITECTURE.md §6), rather than each going through BullMQ; only past the wait
 * list's bound does the queue take over, and a kill -9 with entries waiting loses nothing and
 * doubles nothing in the store (the spool is the truth). One local slot (delivery.concurrency 1),
 * held by an attempt whose answer an LMTP gate in front of the real Dovecot keeps back.
 */

const system = { kind: 'system' as const, id: 'test' };

const cleanups: Array<() => Promise<void>> = [];
afterEach(async (context) => {
  await stopChildGateways(context);
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function gate(): Promise<LmtpGate> {
  const g = await startLmtpGate(inject('dovecot').lmtp.path);
  cleanups.push(async () => {
    g.release();
    await g.close();
  });
  return g;
}

function admin(): Redis {
  const client = new Redis(inject('redisUrl'));
  cleanups.push(async () => void (await client.quit().catch(() => undefined)));
  return client;
}

/**
 * A gateway with one local slot (and `delivery` settings), whose store is behind an LMTP gate, a
 * mailbox, and a first message delivered into the store whose answer the gate holds: the slot is
 * taken until `g.release()`.
 */
async function slotHeld(delivery: Record<string, unknown>): Promise<{
  g: LmtpGate;
  gw: Gateway;
  to: string;
  first: { spoolId: string; messageId: string };
}> {
  const g = await gate();
  const dovecot = inject('dovecot');
  const gw = await startTestGateway({
    overrides: {
      store: { imap: dovecot.imap, lmtp: { path: g.socket }, masterUser: dovecot.masterUser },
      delivery: { concurrency: 1, ...delivery },
    },
  });
  cleanups.push(() => gw.stop()); // once only: a second stop returns the first one's
  const to = uniqueBal('wait');
  await gw.registry.create({ address: to, type: 'PER', owner: '810000000001' }, system);
  g.arm();
  const [first] = await send(gw.addresses.mx!.port, to, 1);
  await g.held;
  return { g, gw, to, first: first! };
}

/** Sends `count` messages from the peer MX to `to`, one after the other; their spool ids and Message-IDs. */
async function send(
  port: number,
  to: string,
  count: number,
): Promise<Array<{ spoolId: string; messageId: string }>> {
  const transport = peerMx(port);
  try {
    const sent: Array<{ spoolId: string; messageId: string }> = [];
    for (let n = 0; n < count; n += 1) {
      const messageId = `<${randomUUID()}@${PEER_DOMAIN}>`;
      const info = await transport.sendMail({
        envelope: { from: `lab@${PEER_DOMAIN}`, to: [to] },
        raw: `From: <lab@${PEER_DOMAIN}>\r\nTo: <${to}>\r\nSubject: wait ${n}\r\nMessage-ID: ${messageId}\r\n\r\nbody ${n}\r\n`,
      });
      expect(info.response).toMatch(/^250 /);
      sent.push({ spoolId: info.response.split(' ').pop()!, messageId });
    }
    return sent;
  } finally {
    transport.close();
  }
}

/**
 * Ids of the jobs ever queued at once in this gateway's local queue (its BullMQ events stream): added
 * without a delay. A delayed one is a safety net (an attempt that ran past NET_AFTER_MS, as any may
 * on a busy machine) or a retry, not a destination sent to the queue instead of waiting.
 */
async function addedJobs(redis: Redis, gw: Gateway): Promise<Set<string>> {
  const events = await queueEvents(redis, gw, 'local');
  const delayed = new Set(events.filter((e) => e.event === 'delayed').map((e) => e.jobId));
  return new Set(events.filter((e) => e.event === 'added' && !delayed.has(e.jobId)).map((e) => e.jobId));
}

/**
 * Waits until every message is in the mailbox and the spool is empty; each must be there once, and
 * nothing waits any more.
 */
async function expectEachOnce(gw: Gateway, to: string, messageIds: readonly string[]): Promise<void> {
  const copies = await eventually(
    () => copiesIn(to),
    (c) => messageIds.every((id) => c.has(id)),
  );
  expect(messageIds.map((id) => copies.get(id) ?? 0)).toEqual(messageIds.map(() => 1));
  expect(
    await eventually(
      () => Promise.resolve(queueEntries(gw.config.dataDir)),
      (n) => n === 0,
    ),
  ).toBe(0);
  expect(gw.delivery.handOffWaiting()).toEqual({ local: 0, relay: 0 });
}

describe('hand-offs waiting in memory for a slot', () => {
  it('are delivered exactly once as the slot frees up, without any BullMQ job', async () => {
    const redis = admin();
    // The store has the first message; the only local slot waits for its answer.
    const { g, gw, to, first } = await slotHeld({ handOffWaitEntries: 100 });
    const waiting = await send(gw.addresses.mx!.port, to, 9);
    expect(gw.delivery.handOffWaiting()).toEqual({ local: 9, relay: 0 });
    g.release();
    await expectEachOnce(
      gw,
      to,
      [first, ...waiting].map((m) => m.messageId),
    );
    // None of the waiting ones was sent to the queue (a safety net is delayed: not counted).
    const added = await addedJobs(redis, gw);
    expect(waiting.filter((m) => added.has(`${m.spoolId}~local`))).toEqual([]);
    expect([...added].filter((id) => id !== `${first.spoolId}~local`)).toEqual([]);
  });

  it('past the wait bound, go through the queue; all are delivered exactly once', async () => {
    const redis = admin();
    const { g, gw, to, first } = await slotHeld({ handOffWaitEntries: 3 });
    const rest = await send(gw.addresses.mx!.port, to, 7);
    const [waiting, queued] = [rest.slice(0, 3), rest.slice(3)];
    // Three wait for the slot; the queue delivers the others meanwhile (its worker has its own).
    expect(gw.delivery.handOffWaiting()).toEqual({ local: 3, relay: 0 });
    const added = await eventually(
      () => addedJobs(redis, gw),
      (a) => queued.every((m) => a.has(`${m.spoolId}~local`)),
    );
    expect(queued.filter((m) => !added.has(`${m.spoolId}~local`))).toEqual([]);
    expect(waiting.filter((m) => added.has(`${m.spoolId}~local`))).toEqual([]);
    g.release();
    await expectEachOnce(
      gw,
      to,
      [first, ...rest].map((m) => m.messageId),
    );
  });

  it('a stop attempts none of those waiting: it queues them, and does not wait for them', async () => {
    const redis = admin();
    const { g, gw, to, first } = await slotHeld({ drainSeconds: 1 });
    const waiting = await send(gw.addresses.mx!.port, to, 3);
    expect(gw.delivery.handOffWaiting()).toEqual({ local: 3, relay: 0 });
    // The held attempt outlives the drain deadline; the stop returns all the same.
    await gw.stop();
    expect(gw.delivery.handOffWaiting()).toEqual({ local: 0, relay: 0 });
    const queue = `${gw.config.redis.prefix}bull:local@${gw.config.node.id}`;
    expect((await redis.lrange(`${queue}:wait`, 0, -1)).sort()).toEqual(
      waiting.map((m) => `${m.spoolId}~local`).sort(),
    );
    // All four are still in the spool for the next start; only the held one reached the store.
    expect(queueEntries(gw.config.dataDir)).toBe(4);
    g.release();
    const copies = await copiesIn(to);
    expect([...copies.keys()]).toEqual([first.messageId]);
  });

  it('a kill -9 with entries waiting loses none and doubles none in the store', async () => {
    const g = await gate();
    const dataDir = scratchDir('wait-kill');
    const config = externalBackendsConfig({
      dataDir,
      prefix: `test:${randomUUID()}:`,
      delivery: { concurrency: 1, lockSeconds: 2 },
    });
    const gated = { ...config, store: { ...(config.store as object), lmtp: { path: g.socket } } };
    const first = await startChildGateway({ config: gated, name: 'first' });
    const to = uniqueBal('waitkill');
    await createBal(first, to);
    g.arm();
    const sent = await send(first.ports.mx, to, 1);
    await g.held; // delivered into the store, answer held: the attempt in flight at the kill
    sent.push(...(await send(first.ports.mx, to, 6)));
    expect(await waitingGauge(first)).toBe(6);
    first.kill('SIGKILL');
    expect((await first.waitExit()).signal).toBe('SIGKILL');
    // The restart talks to the store directly: the first message is found there, not sent again.
    await startChildGateway({ config, name: 'second' });
    const outcomes = sent.map((m) => ({ messageId: m.messageId, state: 'acked' as const }));
    const { duplicates } = await expectEveryAckedDelivered(to, dataDir, outcomes);
    expect(duplicates).toBe(0);
  });
});

/** mssgw_delivery_handoff_waiting{queue="local"} as the child gateway's /metrics shows it. */
async function waitingGauge(gw: ReadyChildGateway): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${gw.ports.metrics}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('mssgw_delivery_handoff_waiting{queue="local"}'));
  return Number(line?.split(' ').pop());
}
