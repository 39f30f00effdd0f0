import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import { ConfigSchema, type Config } from '../../src/config/index.js';
import {
  IndicatorRecorder,
  LifecycleActivity,
  LifecycleRunner,
  lifecycleMetricsObserver,
  type WarningDelivery,
} from '../../src/lifecycle/index.js';
import {
  FileAuditJournal,
  createLogger,
  createMetrics,
  type AuditJournal,
  type Metrics,
} from '../../src/observability/index.js';
import { ActivityStore, BalRegistry, type Actor } from '../../src/registry/index.js';
import { deliverLmtp } from '../../src/store/index.js';
import { TEST_DOMAINS, storeProvisioner } from './admin-harness.js';
import { scratchDir } from './gateway.js';
import { journalEvents } from './journal.js';
import { RecordingDirectory, TestClock } from './lifecycle.js';
import { sharedStore } from './store-mailbox.js';

export const ACTOR: Actor = { kind: 'cli', id: 'lifecycle-test' };

/**
 * Puts warnings into the mailbox through the store's LMTP service (where the lead's local delivery
 * queue puts them), so that a test reads them back over IMAP as the owner would.
 */
export class LmtpWarnings implements WarningDelivery {
  readonly delivered: string[] = [];
  /** Deliveries to these addresses fail (the store is "down" for them). */
  readonly failFor = new Set<string>();

  async deliver(address: string, message: Buffer): Promise<void> {
    if (this.failFor.has(address)) throw new Error('store unavailable (test)');
    const [result] = await deliverLmtp(sharedStore().lmtp, { from: '', to: [address] }, message);
    if (result?.outcome !== 'delivered') throw new Error(`LMTP refused the warning: ${result?.text ?? '?'}`);
    this.delivered.push(address);
  }
}

export interface LifecycleFixture {
  readonly prefix: string;
  readonly redis: Redis;
  readonly clock: TestClock;
  readonly config: Config['lifecycle'];
  readonly registry: BalRegistry;
  readonly activity: ActivityStore;
  readonly directory: RecordingDirectory;
  readonly warnings: LmtpWarnings;
  readonly metrics: Metrics;
  readonly journal: AuditJournal;
  readonly runner: LifecycleRunner;
  readonly indicators: IndicatorRecorder;
  readonly lifecycleActivity: LifecycleActivity;
  readonly dataDir: string;
  /** Journal events whose name starts with one of `prefixes`, oldest first. */
  events(...prefixes: string[]): Array<Record<string, unknown>>;
  /** A counter's value for one label set. */
  counter(name: string, labels?: Record<string, string>): Promise<number>;
  close(): Promise<void>;
}

/**
 * The lifecycle on real parts: the run's Redis (unique prefix), a BalRegistry provisioning mailboxes
 * in the run's Dovecot, a file journal, real metrics, warnings delivered over LMTP, and the
 * recording stand-in for the publication module. Everything runs on a clock the test moves.
 */
export function startLifecycleFixture(
  start: string,
  lifecycle: Partial<Config['lifecycle']> = {},
): LifecycleFixture {
  const prefix = `test:${randomUUID()}:`;
  const redis = new Redis(inject('redisUrl'));
  const clock = new TestClock(start);
  const dataDir = scratchDir('lifecycle');
  const journal = new FileAuditJournal({ dir: path.join(dataDir, 'journal'), clock });
  const config = { ...ConfigSchema.parse({}).lifecycle, ...lifecycle };
  const registry = new BalRegistry({
    redis,
    prefix,
    domains: TEST_DOMAINS,
    clock,
    journal,
    provisioner: storeProvisioner(),
  });
  const activity = ActivityStore.withPrefix(redis, prefix);
  const directory = new RecordingDirectory({ redis, prefix, clock });
  const warnings = new LmtpWarnings();
  const metrics = createMetrics();
  const logger = createLogger({ level: 'silent' });
  const observer = lifecycleMetricsObserver(metrics);
  const runner = new LifecycleRunner({
    redis,
    prefix,
    config,
    registry,
    activity,
    publication: directory,
    publisher: directory,
    warnings,
    clock,
    journal,
    logger,
    observer,
    lockTtlMs: 5_000,
  });
  const indicators = new IndicatorRecorder({
    redis,
    prefix,
    timeZone: config.timeZone,
    retentionDays: config.indicatorsRetentionDays,
    maxSoftwarePerDay: config.maxSoftwarePerDay,
  });
  const lifecycleActivity = new LifecycleActivity({
    redis,
    prefix,
    indicators,
    publisher: directory,
    journal,
    logger,
    observer,
  });
  return {
    prefix,
    redis,
    clock,
    config,
    registry,
    activity,
    directory,
    warnings,
    metrics,
    journal,
    runner,
    indicators,
    lifecycleActivity,
    dataDir,
    events: (...prefixes) =>
      journalEvents(dataDir).filter((e) => prefixes.some((p) => String(e.event).startsWith(p))),
    counter: async (name, labels = {}) => {
      const metric = await metrics.registry.getSingleMetric(name)?.get();
      const value = metric?.values.find((v) =>
        Object.entries(labels).every(([k, l]) => (v.labels as Record<string, unknown>)[k] === l),
      );
      return value?.value ?? 0;
    },
    close: async () => {
      journal.close();
      redis.disconnect();
      await Promise.resolve();
    },
  };
}
