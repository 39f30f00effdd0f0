import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS, LifecyclePlanner } from '../../src/lifecycle/index.js';
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
