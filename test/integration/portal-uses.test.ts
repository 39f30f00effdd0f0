import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { MemoryAuditJournal } from '../../src/observability/index.js';
import { MAX_USES, readMailboxUses, recordMailboxUses, usesKey } from '../../src/portal/mailbox-usage.js';
import { createLogger } from '../../src/observability/index.js';
import { startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { gatewayClient } from '../helpers/imap-clients.js';
import { journalEvents } from '../helpers/journal.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * "Qui a utilisé ma boîte" across nodes (issue #13 item 3): two gateways share one Redis, each with
 * its own data directory and journal. The secretary logs in through one and sends through the other;
 * the uses the page reads (Redis, written from the very journal lines) hold both, whatever node
 * journaled them. Bounded: 90 days, 500 per mailbox.
 */
const DOCTOR = '810000000001';
const SECRETARY = '810000000002';
const system = { kind: 'system' as const, id: 'test' };
const prefix = `test:${randomUUID()}:`;

let nodeA: Gateway;
let nodeB: Gateway;

beforeAll(async () => {
  nodeA = await startTestGateway({ prefix, overrides: { node: { id: 'node-a' } } });
  nodeB = await startTestGateway({ prefix, overrides: { node: { id: 'node-b' } } });
});
afterAll(async () => {
  await nodeA?.stop();
  await nodeB?.stop();
});

describe('who used my mailbox, across nodes', () => {
  it('lists a login made through one node and a sending through the other, not the owner’s own use', async () => {
    const bal = uniqueBal('dr.martin');
    await nodeA.registry.create({ address: bal, type: 'PER', owner: DOCTOR }, system);
    await nodeA.registry.grant(
      bal,
      { right: 'delegate', person: SECRETARY, scopes: ['read', 'send'] },
      system,
    );
    const token = (subject: string) =>
      mintDevToken({ pkiDir: nodeA.config.pkiDir, subject, ttlSeconds: 600 });

    // Her IMAP login through node B; the owner's own login through node B too (not listed).
    const imap = await gatewayClient(nodeB.addresses.imapTls!.port, bal, await token(SECRETARY), 'implicit');
    await imap.logout();
    const own = await gatewayClient(nodeB.addresses.imapTls!.port, bal, await token(DOCTOR), 'implicit');
    await own.logout();
    // Her sending through node A.
    const transport = tokenSubmission(nodeA.addresses.submission!.port, bal, await token(SECRETARY));
    try {
      const sent = await transport.sendMail({
        envelope: { from: bal, to: [bal] },
        from: bal,
        to: bal,
        subject: 'Rendez-vous',
        text: 'Envoyé par le secrétariat.',
      });
      expect(sent.response).toMatch(/^250 /);
    } finally {
      transport.close();
    }

    // Each node journaled only its own part: one node's files alone would miss a use.
    const loginsOnA = journalEvents(nodeA.config.dataDir).filter(
      (e) => e.event === 'auth.succeeded' && e.bal === bal && e.channel === 'imap',
    );
    expect(loginsOnA).toEqual([]);
    const sendsOnB = journalEvents(nodeB.config.dataDir).filter(
      (e) => e.event === 'smtp.submission.accepted' && e.bal === bal,
    );
    expect(sendsOnB).toEqual([]);

    const store = { redis: nodeA.backends.redis, prefix };
    await expect
      .poll(async () => (await readMailboxUses(store, new Set([bal]), new Date())).length, {
        timeout: 20_000,
        interval: 100,
      })
      .toBeGreaterThanOrEqual(3);
    const uses = await readMailboxUses(store, new Set([bal]), new Date());
    // Her IMAP login (node B), and her submission login and sending (node A); never the owner.
    expect(uses.every((u) => u.who === SECRETARY && u.right === 'delegate' && u.bal === bal)).toBe(true);
    expect(
      uses
        .filter((u) => u.action === 'login')
        .map((u) => u.channel)
        .sort(),
    ).toEqual(['imap', 'submission']);
    expect(uses.filter((u) => u.action === 'send')).toHaveLength(1);
    // Newest first.
    expect([...uses].sort((a, b) => (a.at < b.at ? 1 : -1))).toEqual(uses);
  });

  it('keeps 90 days and at most 500 uses per mailbox, and sets the key to expire', async () => {
    const bal = uniqueBal('charge');
    let now = new Date('2026-01-01T08:00:00Z');
    const journal = new MemoryAuditJournal({ now: () => now });
    const redis = nodeA.backends.redis;
    journal.onRecord(recordMailboxUses({ redis, prefix, logger: createLogger({ level: 'silent' }) }));
    const use = () =>
      journal.record({
        event: 'auth.succeeded',
        channel: 'imap',
        bal,
        right: 'member',
        principal: { nationalId: SECRETARY },
      });
    // An old use, then 500 more 91 days later: the old one goes (age), then the oldest (count).
    use();
    now = new Date(now.getTime() + 91 * 86_400_000);
    for (let i = 0; i < MAX_USES + 5; i++) {
      now = new Date(now.getTime() + 1000);
      use();
    }
    const key = usesKey(prefix, bal);
    await expect.poll(() => redis.zcard(key), { timeout: 20_000, interval: 100 }).toBe(MAX_USES);
    const oldest = await redis.zrange(key, 0, 0, 'WITHSCORES');
    expect(Number(oldest[1])).toBe(Date.parse('2026-04-02T08:00:00Z') + 6000);
    const ttl = await redis.pttl(key);
    expect(ttl).toBeGreaterThan(89 * 86_400_000);
    expect(ttl).toBeLessThanOrEqual(90 * 86_400_000);
    // The owner's own use is not indexed at all.
    journal.record({ event: 'auth.succeeded', channel: 'imap', bal: `x${bal}`, right: 'owner' });
    expect(await redis.exists(usesKey(prefix, `x${bal}`))).toBe(0);
  });
});
