// A gateway process reduced to its lifecycle job, for the crash test (test/integration/lifecycle-
// crash.test.ts): the real LifecycleRunner and LifecycleScheduler (BullMQ) on the run's Redis, with
// the Redis-backed stand-in for the publication module, so that a process killed with -9 and the
// one taking over share one "directory". Configured by environment variables:
//   LC_REDIS_URL, LC_PREFIX, LC_NOW (the clock, fixed), LC_JOURNAL_DIR, LC_NAME,
//   LC_BLOCK_AT (the n-th unpublication is applied, then never answered), LC_TRIGGER (queue a run).
// Writes one JSON line per event on stdout; logs (pino) go to stderr.
import { ConfigSchema } from '../../src/config/index.js';
import { LifecycleRunner, LifecycleScheduler } from '../../src/lifecycle/index.js';
import { FileAuditJournal, createLogger } from '../../src/observability/index.js';
import { createRedisClient } from '../../src/redis/index.js';
import { ActivityStore, BalRegistry } from '../../src/registry/index.js';
import { RecordingDirectory, RedisWarnings, TestClock } from './lifecycle.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

function emit(event: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(event)}\n`);
}

const url = required('LC_REDIS_URL');
const prefix = required('LC_PREFIX');
const blockAt = Number(process.env.LC_BLOCK_AT ?? 0);
const clock = new TestClock(required('LC_NOW'));
const redis = createRedisClient(url, { name: 'lifecycle-child' });
const bull = createRedisClient(url, { name: 'lifecycle-child-bull', maxRetriesPerRequest: null });
const journal = new FileAuditJournal({
  dir: required('LC_JOURNAL_DIR'),
  clock,
  node: process.env.LC_NAME ?? String(process.pid),
});
const logger = createLogger({ level: 'info' });
const config = ConfigSchema.parse({}).lifecycle;
const registry = new BalRegistry({
  redis,
  prefix,
  domains: ['op.mssante.test', 'cabinet.mssante.test'],
  clock,
  journal,
  provisioner: { provision: () => Promise.reject(new Error('the lifecycle creates no mailbox')) },
});
const directory = new RecordingDirectory({ redis, prefix, clock });
directory.beforeAnswer = async (call, count) => {
  emit({ event: 'directory.call', address: call.address, count });
  if (count === blockAt) {
    emit({ event: 'directory.blocked', address: call.address, count });
    // Applied and logged by the directory, never answered: the process is killed here.
    await new Promise<never>(() => {});
  }
};
const runner = new LifecycleRunner({
  redis,
  prefix,
  config,
  registry,
  activity: ActivityStore.withPrefix(redis, prefix),
  publication: directory,
  publisher: directory,
  warnings: new RedisWarnings(redis, prefix),
  clock,
  journal,
  logger,
  lockTtlMs: 2_000,
});
const scheduler = new LifecycleScheduler({
  connection: bull,
  bullPrefix: `${prefix}bull`,
  config,
  runner,
  logger,
  lockDurationMs: 2_000,
  stalledIntervalMs: 500,
});
await scheduler.start();
if (process.env.LC_TRIGGER) emit({ event: 'job.queued', id: await scheduler.trigger() });
emit({ event: 'child.ready', pid: process.pid });

process.once('SIGTERM', () => {
  void scheduler.stop().finally(() => {
    journal.close();
    redis.disconnect();
    bull.disconnect();
  });
});
