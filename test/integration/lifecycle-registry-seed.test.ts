import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { seedRegistry, type SeedBal } from '../../bench/registry-seed.js';
import { DAY_MS } from '../../src/lifecycle/index.js';
import { MemoryAuditJournal } from '../../src/observability/index.js';
import { BalRegistry } from '../../src/registry/index.js';
import { TEST_DOMAINS, keysUnder, storeProvisioner, uniqueAddress } from '../helpers/admin-harness.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';

const T0 = Date.parse('2026-01-05T02:15:00.000Z');
const iso = (ms: number) => new Date(ms).toISOString();

let fixture: LifecycleFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

/** Every key under `prefix`, without it, with its type and content in a comparable form. */
async function dump(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of await keysUnder(redis, prefix)) {
    const type = await redis.type(key);
    const name = key.slice(prefix.length);
    if (type === 'hash') out[name] = { hash: await redis.hgetall(key) };
    else if (type === 'set') out[name] = { set: (await redis.smembers(key)).sort() };
    else if (type === 'zset') out[name] = { zset: await redis.zrange(key, 0, -1, 'WITHSCORES') };
    else out[name] = { [type]: await redis.dump(key) };
  }
  return out;
}

describe('registry seeding for the benchmarks', () => {
  it('writes what creating, using, suspending and deleting through the registry writes', async () => {
    const f = startLifecycleFixture(iso(T0));
    fixture = f;
    const per = (i: number) => `8100000000${String(i).padStart(2, '0')}`;
    const sample: SeedBal[] = [
      { address: uniqueAddress('never'), type: 'PER', owner: per(1), createdAt: iso(T0) },
      {
        address: uniqueAddress('used'),
        type: 'PER',
        owner: per(1),
        createdAt: iso(T0 + 1000),
        used: { channel: 'imap', at: T0 + 3 * DAY_MS },
      },
      {
        address: uniqueAddress('org', TEST_DOMAINS[1]),
        type: 'ORG',
        owner: '1750712184',
        createdAt: iso(T0 + 2000),
        listeRouge: true,
        used: { channel: 'submission', at: T0 + DAY_MS + 7 },
      },
      {
        address: uniqueAddress('susp'),
        type: 'PER',
        owner: per(2),
        createdAt: iso(T0 + 3000),
        used: { channel: 'application', at: T0 + 2 * DAY_MS },
        change: { to: 'suspended', at: iso(T0 + 4 * DAY_MS) },
      },
      {
        address: uniqueAddress('gone'),
        type: 'PER',
        owner: per(2),
        createdAt: iso(T0 + 4000),
        used: { channel: 'imap', at: T0 + DAY_MS },
        change: { to: 'deleted', at: iso(T0 + 5 * DAY_MS) },
      },
      {
        address: uniqueAddress('gone-org'),
        type: 'ORG',
        owner: '1750712184',
        createdAt: iso(T0 + 5000),
        change: { to: 'deleted', at: iso(T0 + 6 * DAY_MS) },
      },
    ];
    // The same history through BalRegistry (the real store provisions the mailboxes), in order.
    for (const s of sample) {
      f.clock.set(Date.parse(s.createdAt));
      await f.registry.create(
        { address: s.address, type: s.type, owner: s.owner, ...(s.listeRouge ? { listeRouge: true } : {}) },
        ACTOR,
      );
    }
    for (const s of sample) {
      if (s.used)
        expect(await f.registry.recordActivity(s.address, s.used.channel, new Date(s.used.at))).toBe(true);
    }
    for (const s of sample) {
      if (!s.change) continue;
      f.clock.set(Date.parse(s.change.at));
      if (s.change.to === 'suspended') await f.registry.suspend(s.address, ACTOR);
      else await f.registry.delete(s.address, ACTOR);
    }

    const seedPrefix = `test:${randomUUID()}:`;
    expect(await seedRegistry(f.redis, seedPrefix, sample, 4)).toBe(sample.length);
    try {
      const [viaApi, seeded] = [await dump(f.redis, f.prefix), await dump(f.redis, seedPrefix)];
      expect(Object.keys(viaApi).length).toBeGreaterThan(sample.length);
      expect(seeded).toEqual(viaApi);

      const read = new BalRegistry({
        redis: f.redis,
        prefix: seedPrefix,
        domains: TEST_DOMAINS,
        clock: f.clock,
        journal: new MemoryAuditJournal(),
        provisioner: storeProvisioner(),
      });
      for (const s of sample) {
        expect(await read.get(s.address)).toEqual(await f.registry.get(s.address));
        expect(await read.activity(s.address)).toEqual(await f.registry.activity(s.address));
      }
      expect(await read.list({ limit: 1000 })).toEqual(await f.registry.list({ limit: 1000 }));
      expect(await read.countByStatusAndType()).toEqual(await f.registry.countByStatusAndType());
      expect(await read.balsForPerson(per(2))).toEqual(await f.registry.balsForPerson(per(2)));
    } finally {
      const stale = Object.keys(await dump(f.redis, seedPrefix)).map((k) => `${seedPrefix}${k}`);
      if (stale.length > 0) await f.redis.del(...stale);
    }
  });
});
