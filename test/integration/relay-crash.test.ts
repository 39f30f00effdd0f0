import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import { parseSpoolEntry } from '../../src/delivery/index.js';
import { createRedisClient, startEmbeddedRedis } from '../../src/redis/index.js';
import { createLogger } from '../../src/observability/index.js';
import { call } from '../helpers/admin-http.js';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { PEER_DOMAIN, pkiFile, scratchDir, uniqueBal } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually } from '../helpers/mailbox.js';
import { messageIdOf, type PeerOperator, startPeerOperator } from '../helpers/peer-operator.js';

/**
 * Issue #4: the relay queue survives a SIGKILL of the gateway and a restart of Redis; several
 * gateway processes share it. No message is lost. Towards another operator delivery is at-least-once
 * (README, Durability): a kill with transactions in flight may deliver those again, and only those;
 * without a kill in flight every message is delivered exactly once.
 */

const DOCTOR = '810000000001';
const cleanups: Array<() => Promise<void>> = [];
afterEach(async (context) => {
  await stopChildGateways(context);
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function peer(): Promise<PeerOperator> {
  const p = await startPeerOperator({ leaf: 'peer-trusted' });
  cleanups.push(() => p.stop());
  return p;
}

function config(
  dataDir: string,
  prefix: string,
  p: PeerOperator,
  redisUrl?: string,
): Record<string, unknown> {
  return externalBackendsConfig({
    dataDir,
    prefix,
    delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1, lockSeconds: 2, reconcileSeconds: 2 },
    overrides: {
      relay: { routes: { [PEER_DOMAIN]: [{ host: '127.0.0.1', port: p.port }] }, idleSeconds: 1 },
      ...(redisUrl ? { redis: { url: redisUrl } } : {}),
    },
  });
}

async function createBal(gw: ReadyChildGateway): Promise<string> {
  const address = uniqueBal('relay-crash');
  const answer = await call({ url: `http://127.0.0.1:${gw.ports.admin}` }, 'POST', '/v1/bals', {
    json: { address, type: 'PER', owner: DOCTOR },
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(201);
  return address;
}

/** Submits `count` messages to the peer domain; returns their Message-IDs. */
async function submit(gw: ReadyChildGateway, from: string, count: number): Promise<string[]> {
  const accessToken = await mintDevToken({ pkiDir: inject('pkiDir'), subject: DOCTOR, ttlSeconds: 600 });
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port: gw.ports.submission,
    secure: false,
    requireTLS: true,
    pool: true,
    maxConnections: 2,
    auth: { type: 'OAuth2', user: from, accessToken },
    tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
  });
  // A pooled connection can fail after its last message (the gateway is killed under it): its
  // error belongs to no sendMail any more, and must not end the test process.
  transport.on('error', () => {});
  try {
    const ids = Array.from({ length: count }, () => `<${randomUUID()}@op.mssante.test>`);
    await Promise.all(
      ids.map((messageId, n) =>
        transport.sendMail({
          from,
          to: `dest${n % 3}@${PEER_DOMAIN}`,
          subject: `crash ${n}`,
          messageId,
          text: `message ${n}\n`.repeat(50),
        }),
      ),
    );
    return ids;
  } finally {
    transport.close();
  }
}

/** Message-ID → copies the peer received. */
function copies(p: PeerOperator): Map<string, number> {
  const out = new Map<string, number>();
  for (const m of p.messages) {
    const id = messageIdOf(m);
    out.set(id, (out.get(id) ?? 0) + 1);
  }
  return out;
}

/** Message-IDs of the messages the spool still holds (not settled): the gateway will send them. */
function spooledMessageIds(dataDir: string): Set<string> {
  const queue = path.join(dataDir, 'spool', 'queue');
  const ids = new Set<string>();
  for (const file of readdirSync(queue)) {
    if (!file.endsWith('.entry')) continue;
    let envelope: { messageId?: unknown };
    try {
      envelope = parseSpoolEntry(readFileSync(path.join(queue, file))).envelope;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // settled while listed
      throw err;
    }
    if (typeof envelope.messageId === 'string') ids.add(envelope.messageId);
  }
  return ids;
}

function expectExactlyOnce(p: PeerOperator, ids: readonly string[]): void {
  const c = copies(p);
  expect(
    ids.filter((id) => c.get(id) !== 1),
    'messages not delivered exactly once',
  ).toEqual([]);
  expect([...c.keys()].filter((id) => !ids.includes(id))).toEqual([]);
}

describe('relay queue crash safety', () => {
  it('SIGKILL with transactions in flight: after a restart every message arrives, duplicates only of those in flight', async (context) => {
    const p = await peer();
    const dataDir = scratchDir('relay-kill');
    const prefix = `test:${randomUUID()}:`;
    const first = await startChildGateway({ config: config(dataDir, prefix, p), name: 'first' });
    const from = await createBal(first);
    // The peer answers the first 8 transactions, then keeps each message it fully receives but
    // holds its `250`: the kill lands with transactions the peer has and the gateway does not know of.
    const held: Array<{ readonly release: () => void; readonly id: string }> = [];
    const ACCEPTED = 8;
    for (let n = 0; n < 200; n += 1)
      p.faults.push({
        kind: 'hold-data',
        held: (release, message) =>
          n < ACCEPTED ? release() : held.push({ release, id: messageIdOf(message) }),
      });
    const ids = await submit(first, from, 30);
    await eventually(
      () =>
        Promise.resolve(journalEvents(dataDir).filter((e) => e.event === 'delivery.relay.delivered').length),
      (n) => n >= ACCEPTED,
    );
    await eventually(
      () => Promise.resolve(held.length),
      (n) => n > 0,
    );
    first.kill('SIGKILL');
    expect((await first.waitExit()).signal).toBe('SIGKILL');
    // Once the peer has seen every connection of the dead process close, it has read all it sent:
    // from here on what the peer holds and what the spool holds are both fixed.
    await p.quiet();
    p.faults.splice(0);
    const heldAtKill = held.splice(0);
    for (const h of heldAtKill) h.release(); // to a closed connection: the gateway never hears it
    const atPeer = copies(p);
    const spooled = spooledMessageIds(dataDir);
    // In flight at the kill: at the peer, and not yet settled in the spool. SMTP cannot tell whether
    // such a transaction succeeded, so the gateway sends it again (README, Durability).
    const inFlight = [...atPeer.keys()].filter((id) => spooled.has(id));
    expect(heldAtKill.length, 'transactions whose reply was held at the kill').toBeGreaterThan(0);
    expect(
      heldAtKill.filter((h) => !inFlight.includes(h.id)),
      'a held transaction is still to deliver',
    ).toEqual([]);
    expect(atPeer.size).toBeGreaterThanOrEqual(ACCEPTED);

    const second = await startChildGateway({ config: config(dataDir, prefix, p), name: 'second' });
    // Done when the spool is empty: every message has its final outcome, so no copy is still coming.
    expect(
      await eventually(
        () => Promise.resolve(spooledMessageIds(dataDir).size),
        (n) => n === 0,
        90_000,
      ),
      'messages left in the spool',
    ).toBe(0);
    const c = copies(p);
    // At least once: none lost, nothing foreign.
    expect(
      ids.filter((id) => (c.get(id) ?? 0) < 1),
      'messages lost',
    ).toEqual([]);
    expect([...c.keys()].filter((id) => !ids.includes(id))).toEqual([]);
    // Duplicates: only messages in flight at the kill, one more copy each at most per time in flight.
    const duplicated = ids.filter((id) => (c.get(id) ?? 0) > 1);
    expect(
      duplicated.filter((id) => !inFlight.includes(id)),
      'duplicates of messages not in flight',
    ).toEqual([]);
    for (const id of duplicated) expect(c.get(id), id).toBe((atPeer.get(id) ?? 0) + 1);
    // A message whose reply never reached the gateway is sent again: the held ones are duplicated.
    expect(heldAtKill.filter((h) => (c.get(h.id) ?? 0) < 2)).toEqual([]);
    second.kill('SIGTERM');
    expect((await second.waitExit()).code).toBe(0);
    await context.annotate(
      `${ids.length} messages; at the kill ${atPeer.size} at the peer, ${heldAtKill.length} of them ` +
        `with the reply held, ${inFlight.length} in flight; ${duplicated.length} duplicated`,
    );
  });

  it('a Redis restart mid-queue, and jobs lost by Redis, lose no message', async () => {
    const p = await peer();
    const redisDir = scratchDir('relay-redis');
    const redis = await startEmbeddedRedis({ dataDir: redisDir, logger: createLogger({ level: 'silent' }) });
    cleanups.push(() => redis.stop());
    const dataDir = scratchDir('relay-redis-gw');
    const prefix = `test:${randomUUID()}:`;
    await p.stop(); // messages pile up in the queue, retried
    const gw = await startChildGateway({ config: config(dataDir, prefix, p, redis.url), name: 'gw' });
    const from = await createBal(gw);
    const ids = await submit(gw, from, 12);
    await eventually(
      () =>
        Promise.resolve(journalEvents(dataDir).filter((e) => e.event === 'delivery.relay.deferred').length),
      (n) => n >= ids.length,
    );
    // Redis dies without a chance to save (AOF kept); its supervisor starts it again.
    const before = redis.pid;
    process.kill(before, 'SIGKILL');
    await eventually(
      () => Promise.resolve(redis.pid),
      (pid) => pid !== before,
      20_000,
    );
    // And some jobs are lost outright, as if Redis had lost its last second of writes.
    const client = createRedisClient(redis.url);
    cleanups.push(async () => void (await client.quit().catch(() => undefined)));
    const keys = await eventually(
      () => client.keys(`${prefix}bull:relay@*:*~${PEER_DOMAIN}`).catch(() => [] as string[]),
      (k) => k.length > 0,
    );
    await client.del(...keys.slice(0, 4));
    await p.restart();
    await p.received(ids.length, 90_000);
    await eventually(
      () => Promise.resolve(copies(p).size),
      (n) => n >= ids.length,
    );
    expectExactlyOnce(p, ids);
  });

  it('two nodes, each with its own spool, deliver each recipient once', async () => {
    const p = await peer();
    await p.stop();
    const dirs = [scratchDir('relay-node-a'), scratchDir('relay-node-b')] as const;
    const prefix = `test:${randomUUID()}:`;
    // Two nodes as deployed: same Redis and configuration, each its own spool and node.id.
    const nodeConfig = (dir: string, node: string) => ({ ...config(dir, prefix, p), node: { id: node } });
    const a = await startChildGateway({ config: nodeConfig(dirs[0], 'relay-a'), name: 'a' });
    const b = await startChildGateway({ config: nodeConfig(dirs[1], 'relay-b'), name: 'b' });
    const from = await createBal(a);
    const ids = [...(await submit(a, from, 10)), ...(await submit(b, from, 10))];
    await p.restart();
    await p.received(ids.length, 90_000);
    await eventually(
      () => Promise.resolve(copies(p).size),
      (n) => n >= ids.length,
    );
    expectExactlyOnce(p, ids);
    // Each node delivered what it accepted: the messages in its own spool. A node journals its
    // delivery after the peer's reply, so the last lines may trail the peer's count.
    const delivered = await eventually(
      () =>
        Promise.resolve(
          dirs.map((dir) => journalEvents(dir).filter((e) => e.event === 'delivery.relay.delivered').length),
        ),
      (counts) => counts.every((n) => n >= 10),
    );
    expect(delivered, 'deliveries by node').toEqual([10, 10]);
  });
});
