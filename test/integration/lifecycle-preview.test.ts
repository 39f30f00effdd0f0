import { afterEach, describe, expect, inject, it } from 'vitest';
import { DAY_MS } from '../../src/lifecycle/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';

const T0 = Date.parse('2026-01-05T02:15:00.000Z');
const runDay = (d: number) => new Date(T0 + d * DAY_MS).toISOString();

let fixture: LifecycleFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

interface Preview {
  asOf: string;
  publicationSource: { stored: number; assumed: number };
  items: Array<Record<string, unknown>>;
  counts: Record<string, number>;
}

describe('mssgw lifecycle preview', () => {
  it('lists what the next run would do and why, and changes nothing', async () => {
    const f = startLifecycleFixture(new Date(T0 - 6 * 3_600_000).toISOString());
    fixture = f;
    const create = async (label: string) => {
      const address = uniqueAddress(label);
      await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
      await f.directory.set(address, 'published', f.clock.now());
      return address;
    };
    const idle = await create('a-idle');
    const used = await create('b-used');
    const suspended = await create('c-suspended');
    await f.registry.suspend(suspended, ACTOR);
    await f.registry.recordActivity(used, 'imap', new Date(T0 + 20 * DAY_MS));
    const env = { MSSGW_REDIS__URL: inject('redisUrl'), MSSGW_REDIS__PREFIX: f.prefix };
    const preview = async (day: number): Promise<Preview> => {
      const run = await mssgw(['lifecycle', 'preview', '--at', runDay(day), '--json'], env);
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      return JSON.parse(run.stdout) as Preview;
    };

    const before = (await f.redis.keys(`${f.prefix}lifecycle:*`)).sort();
    const day30 = await preview(30);
    expect(day30).toMatchObject({ asOf: runDay(30), publicationSource: { stored: 0, assumed: 3 } });
    expect(day30.items).toEqual([
      {
        action: 'warn',
        address: idle,
        reason: 'inactivity-warning',
        idleDays: 30,
        lastActivityAt: null,
        unpublishAt: runDay(45),
        warnedAt: null,
      },
    ]);
    expect(day30.counts).toEqual({
      'warn:inactivity-warning': 1,
      'none:recently-used': 1,
      'none:suspended': 1,
    });
    expect((await f.redis.keys(`${f.prefix}lifecycle:*`)).sort()).toEqual(before);
    expect(f.warnings.delivered).toEqual([]);

    // The daily run does what the preview said; then the preview shows the next step.
    f.clock.set(Date.parse(runDay(30)));
    await f.runner.runOnce();
    const day45 = await preview(45);
    expect(day45.items).toMatchObject([
      { action: 'unpublish-inactive', address: idle, reason: 'inactive', warnedAt: runDay(30) },
    ]);
    f.clock.set(Date.parse(runDay(45)));
    await f.runner.runOnce();
    const day46 = await preview(46);
    expect(day46.items).toEqual([]);
    expect(day46.counts).toMatchObject({ 'none:not-published': 1 });

    const text = await mssgw(['lifecycle', 'preview', '--at', runDay(50), '--all'], env);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain(
      'publication state: from the publication records for 0 mailboxes, assumed for 3',
    );
    expect(text.stdout).toContain(`warn               ${used}  inactivity-warning  (idle 30 d`);
    expect(text.stdout).toContain(`none               ${idle}  not-published`);
    expect(text.stdout).toContain(`none               ${suspended}  suspended`);
  });

  it('says so when the gateway Redis cannot be reached', async () => {
    const run = await mssgw(['lifecycle', 'preview'], { MSSGW_REDIS__URL: 'redis://127.0.0.1:9' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain("cannot read the gateway's Redis");
    expect(run.stderr).toContain('(REGISTRY_UNAVAILABLE)');
  });

  it("reads the publication module's records where there are some: a red-listed mailbox is left alone", async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const redListed = uniqueAddress('red');
    const other = uniqueAddress('other');
    for (const address of [redListed, other]) {
      await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
    }
    // A record as src/publication/publication-store.ts writes it for a red-listed mailbox.
    await f.redis.hset(`${f.prefix}publication:${redListed}`, {
      address: redListed,
      state: 'unpublished',
      reason: 'red-list',
      since: new Date(T0).toISOString(),
      listed: 'no',
    });
    const run = await mssgw(['lifecycle', 'preview', '--at', runDay(31), '--json', '--all'], {
      MSSGW_REDIS__URL: inject('redisUrl'),
      MSSGW_REDIS__PREFIX: f.prefix,
    });
    expect(run.code).toBe(0);
    const preview = JSON.parse(run.stdout) as Preview;
    expect(preview.publicationSource).toEqual({ stored: 1, assumed: 1 });
    expect(preview.items.map((i) => [i.address, i.action, i.reason])).toEqual(
      [
        [redListed, 'none', 'red-listed'],
        [other, 'warn', 'inactivity-warning'],
      ].sort((a, b) => (a[0]! < b[0]! ? -1 : 1)),
    );
  });
});
