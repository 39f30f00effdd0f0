import { Queue } from 'bullmq';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { LIFECYCLE_QUEUE, LifecycleScheduler, type RunSummary } from '../../src/lifecycle/index.js';
import { createLogger } from '../../src/observability/index.js';
import { createRedisClient } from '../../src/redis/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';

const T0 = Date.parse('2026-01-05T02:15:00.000Z');

let fixture: LifecycleFixture | undefined;
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await fixture?.close();
  fixture = undefined;
});

/** A gateway process's scheduler on the fixture's runner; `runs` records the runs it carried out. */
function schedulerFor(f: LifecycleFixture, enabled = true) {
  const connection = createRedisClient(inject('redisUrl'), { maxRetriesPerRequest: null });
  const runs: RunSummary[] = [];
  let notify: (() => void) | undefined;
  const scheduler = new LifecycleScheduler({
    connection,
    bullPrefix: `${f.prefix}bull`,
    config: { enabled, runAt: '03:15', timeZone: 'Europe/Paris' },
    runner: {
      runOnce: async (signal) => {
        const summary = await f.runner.runOnce(signal);
        runs.push(summary);
        notify?.();
        return summary;
      },
    },
    logger: createLogger({ level: 'silent' }),
  });
  cleanups.push(async () => {
    await scheduler.stop();
    connection.disconnect();
  });
  return { scheduler, runs, ran: () => new Promise<void>((resolve) => (notify = resolve)) };
}

describe('lifecycle job scheduler', () => {
  it('schedules one daily run for every process, and gives each run to one of them', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const address = uniqueAddress('idle');
    await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
    await f.directory.set(address, 'published', f.clock.now());
    f.clock.set(T0 + 31 * 86_400_000);

    const a = schedulerFor(f);
    const b = schedulerFor(f);
    await a.scheduler.start();
    await b.scheduler.start();
    expect(await a.scheduler.schedule()).toMatchObject({ pattern: '15 3 * * *', tz: 'Europe/Paris' });
    const connection = createRedisClient(inject('redisUrl'), { maxRetriesPerRequest: null });
    const queue = new Queue(LIFECYCLE_QUEUE, { connection, prefix: `${f.prefix}bull` });
    cleanups.push(async () => {
      await queue.close();
      connection.disconnect();
    });
    expect(await queue.getJobSchedulersCount()).toBe(1);

    const firstRun = Promise.race([a.ran(), b.ran()]);
    await a.scheduler.trigger();
    await firstRun;
    expect([...a.runs, ...b.runs].map((r) => r.status)).toEqual(['done']);
    expect(f.warnings.delivered).toEqual([address]);

    const secondRun = Promise.race([a.ran(), b.ran()]);
    await b.scheduler.trigger();
    await secondRun;
    expect([...a.runs, ...b.runs].map((r) => r.status).sort()).toEqual(['already-done', 'done']);
    expect(f.warnings.delivered).toEqual([address]);
    expect(f.events('lifecycle.run.started')).toHaveLength(1);
  });

  it('lifecycle.enabled false removes the daily schedule', async () => {
    const f = startLifecycleFixture(new Date(T0).toISOString());
    fixture = f;
    const on = schedulerFor(f);
    await on.scheduler.start();
    expect(await on.scheduler.schedule()).toBeDefined();
    const off = schedulerFor(f, false);
    await off.scheduler.start();
    expect(await on.scheduler.schedule()).toBeUndefined();
  });
});
