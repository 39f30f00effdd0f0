import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS, LifecyclePlanner } from '../../src/lifecycle/index.js';
import { MAX_SUMMARY_LIMIT } from '../../src/registry/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';

const T0 = Date.parse('2026-01-05T02:15:00.000Z');

let fixture: LifecycleFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

describe('lifecycle planner pages', () => {
  it('reads ahead page by page and plans every mailbox once, in order, whatever the page size', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const addresses: string[] = [];
    for (let i = 0; i < 7; i++) {
      const address = uniqueAddress(`p${i}`);
      await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
      await f.directory.set(address, 'published', f.clock.now());
      if (i % 2 === 0) await f.registry.recordActivity(address, 'imap', new Date(T0 + 5 * DAY_MS));
      addresses.push(address);
    }
    const planner = new LifecyclePlanner({
      redis: f.redis,
      prefix: f.prefix,
      thresholds: { inactivityDays: f.config.inactivityDays, warningLeadDays: f.config.warningLeadDays },
      registry: f.registry,
      activity: f.activity,
      publication: f.directory,
    });
    const now = T0 + 33 * DAY_MS; // idle since creation: warned; used on day 5: not yet
    const plan = async (pageSize: number) => {
      const pages: string[][] = [];
      const decisions: string[] = [];
      for await (const page of planner.pages(now, pageSize)) {
        pages.push(page.map((p) => p.bal.address));
        for (const p of page) decisions.push(`${p.bal.address} ${p.decision.action}:${p.decision.reason}`);
      }
      return { pages, decisions };
    };
    const whole = await plan(1000);
    expect(whole.pages).toEqual([[...addresses].sort()]);
    expect(new Set(whole.decisions.map((d) => d.split(' ')[1])).size).toBeGreaterThan(1);
    const paged = await plan(2);
    expect(paged.pages.map((p) => p.length)).toEqual([2, 2, 2, 1]);
    expect(paged.decisions).toEqual(whole.decisions);
  });
});

describe('lifecycle planner read-ahead', () => {
  /** Ten mailboxes, and a planner whose registry counts its summary reads (a pass-through). */
  const tenMailboxes = async (f: LifecycleFixture) => {
    const addresses: string[] = [];
    for (let i = 0; i < 10; i++) {
      const address = uniqueAddress(`r${i}`);
      await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
      await f.directory.set(address, 'published', f.clock.now());
      addresses.push(address);
    }
    const reads: Array<Promise<unknown>> = [];
    const planner = new LifecyclePlanner({
      redis: f.redis,
      prefix: f.prefix,
      thresholds: { inactivityDays: f.config.inactivityDays, warningLeadDays: f.config.warningLeadDays },
      registry: {
        get: (address) => f.registry.get(address),
        summaries: (query) => {
          const read = f.registry.summaries(query);
          reads.push(read);
          return read;
        },
      },
      activity: f.activity,
      publication: f.directory,
    });
    return { addresses: addresses.sort(), planner, reads };
  };

  it('hands out the pages before a failed read in order, then throws its error', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const { addresses, planner } = await tenMailboxes(f);
    // The sixth mailbox's record is broken: the third page of two cannot be read.
    await f.redis.hdel(`${f.prefix}bal:${addresses[5]}`, 'createdAt');
    const seen: string[] = [];
    const run = async () => {
      for await (const page of planner.pages(T0 + DAY_MS, 2)) {
        // A slow caller: the reads ahead, the failed one included, finish before it asks again.
        await f.redis.ping();
        seen.push(...page.map((p) => p.bal.address));
      }
    };
    await expect(run()).rejects.toMatchObject({ code: 'INTERNAL' });
    expect(seen).toEqual(addresses.slice(0, 4));
  });

  it('stops reading ahead when the caller stops, a few pages past the one it took', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const { addresses, planner, reads } = await tenMailboxes(f);
    let first: string[] = [];
    for await (const page of planner.pages(T0 + DAY_MS, 1)) {
      first = page.map((p) => p.bal.address);
      break;
    }
    expect(first).toEqual([addresses[0]]);
    // Reads in flight when it stopped finish; none starts after them.
    let settled = 0;
    while (settled < reads.length) {
      settled = reads.length;
      await Promise.allSettled(reads);
    }
    expect(reads.length).toBeGreaterThanOrEqual(1);
    expect(reads.length).toBeLessThan(addresses.length);
  });
});

describe('lifecycle planner bulk read', () => {
  it('plans from page summaries exactly what whole records read one by one decide, on a mixed registry', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const at = (days: number) => new Date(T0 + days * DAY_MS);
    const made: Record<string, string> = {};
    const create = async (label: string, type: 'PER' | 'ORG', extra: { listeRouge?: boolean } = {}) => {
      const address = uniqueAddress(label);
      const owner = type === 'PER' ? '810000000001' : '1750712184';
      await f.registry.create({ address, type, owner, description: 'a service', ...extra }, ACTOR);
      made[label] = address;
      return address;
    };
    for (const label of ['idle', 'used-early', 'used-mid', 'used-late']) {
      await f.directory.set(await create(label, 'PER'), 'published', f.clock.now());
    }
    await f.directory.set(await create('red', 'ORG', { listeRouge: true }), 'published', f.clock.now(), true);
    await f.directory.set(await create('suspended', 'PER'), 'published', f.clock.now());
    await f.directory.set(await create('deleted', 'PER'), 'published', f.clock.now());
    await f.directory.set(await create('pending', 'ORG'), 'pending', f.clock.now());
    await create('unknown', 'PER');
    await f.registry.recordActivity(made['used-early']!, 'imap', at(5));
    await f.registry.recordActivity(made['used-mid']!, 'submission', at(12));
    f.clock.set(at(1));
    await f.registry.suspend(made.suspended!, ACTOR, 'on leave');
    await f.registry.delete(made.deleted!, ACTOR);
    // A first run warns the mailboxes idle since their creation (day 33 of 45).
    f.clock.set(at(33));
    await f.runner.runOnce();
    await f.registry.recordActivity(made['used-late']!, 'imap', at(40));

    const planner = new LifecyclePlanner({
      redis: f.redis,
      prefix: f.prefix,
      thresholds: { inactivityDays: f.config.inactivityDays, warningLeadDays: f.config.warningLeadDays },
      deletedMailRetentionDays: 30,
      registry: f.registry,
      activity: f.activity,
      publication: f.directory,
    });
    const now = at(50).getTime();
    const decided: string[] = [];
    for await (const page of planner.pages(now, 3)) {
      for (const p of page) {
        // The reference: the whole record, read alone, as the plan was made before summaries.
        const whole = await planner.one(p.bal.address, now);
        expect(whole).toBeDefined();
        expect(p.decision).toEqual(whole?.decision);
        expect(p.purge).toEqual(whole?.purge);
        expect(p.publication).toEqual(whole?.publication);
        const { address, type, status, createdAt, deletedAt, listeRouge } = whole!.bal;
        expect(p.bal).toEqual({
          address,
          type,
          status,
          createdAt,
          listeRouge,
          ...(deletedAt ? { deletedAt } : {}),
        });
        decided.push(`${p.decision.action}:${p.decision.reason}${p.purge ? '+purge' : ''}`);
      }
    }
    expect(decided.sort()).toEqual(
      [
        'none:deleted+purge',
        'none:not-published',
        'none:publication-unknown',
        'none:recently-used',
        'none:red-listed',
        'none:suspended',
        'unpublish-inactive:inactive',
        'warn:inactivity-warning',
        'warn:overdue-warning',
      ].sort(),
    );
  });
});

describe('registry summaries', () => {
  it('continues right after its cursor when mailboxes are added before or after it meanwhile', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const create = (address: string) =>
      f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
    const tag = uniqueAddress('').split('@')[0]!.slice(1);
    const at = (label: string) => `${label}.${tag}@op.mssante.test`;
    for (const label of ['b', 'd', 'f', 'h']) await create(at(label));
    const first = await f.registry.summaries({ limit: 2 });
    expect(first.items.map((b) => b.address)).toEqual([at('b'), at('d')]);
    // Added meanwhile: one before the cursor (not read), one after it (read in its place).
    await create(at('a'));
    await create(at('e'));
    // An index entry without a record (none of our scripts leaves one) is passed over.
    await f.redis.zadd(`${f.prefix}bals`, 0, at('g'));
    const second = await f.registry.summaries({ limit: 3, cursor: first.nextCursor! });
    expect(second.items.map((b) => b.address)).toEqual([at('e'), at('f')]);
    expect(second.nextCursor).toBeDefined();
    const third = await f.registry.summaries({ limit: 3, cursor: second.nextCursor! });
    expect(third).toEqual({
      items: [
        {
          address: at('h'),
          type: 'PER',
          status: 'active',
          createdAt: new Date(T0).toISOString(),
          listeRouge: false,
        },
      ],
    });
  });

  it('refuses a page size beyond the bound or a cursor it did not hand out, and a corrupt record', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const address = uniqueAddress('s');
    await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
    for (const limit of [0, MAX_SUMMARY_LIMIT + 1, 1.5]) {
      await expect(f.registry.summaries({ limit })).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    }
    await expect(f.registry.summaries({ limit: 10, cursor: 'bm90LWFuLWFkZHJlc3M' })).rejects.toMatchObject({
      code: 'REQUEST_INVALID',
    });
    const page = await f.registry.summaries({ limit: MAX_SUMMARY_LIMIT });
    expect(page).toEqual({
      items: [
        { address, type: 'PER', status: 'active', createdAt: new Date(T0).toISOString(), listeRouge: false },
      ],
    });
    await f.redis.hdel(`${f.prefix}bal:${address}`, 'createdAt');
    await expect(f.registry.summaries({ limit: 10 })).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});
