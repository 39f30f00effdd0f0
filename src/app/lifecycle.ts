import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import type { DeliveryQueue, Spool } from '../delivery/index.js';
import type { DirectoryMirrors } from '../directory/index.js';
import {
  IndicatorBuffer,
  IndicatorRecorder,
  LifecycleActivity,
  LifecycleEvents,
  LifecycleRunner,
  LifecycleScheduler,
  type RunSummary,
  lifecycleMetricsObserver,
  lifecyclePublicationPorts,
} from '../lifecycle/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import type { PublicationService } from '../publication/index.js';
import { ActivityStore, type Bal, type BalRegistry, ownedAddresses } from '../registry/index.js';
import { normalizeDomain } from '../shared/index.js';
import type { Backends } from './backends.js';
import { storePurger } from './store-adapters.js';

export interface LifecyclePartDeps {
  readonly config: Config;
  readonly backends: Backends;
  readonly registry: BalRegistry;
  /** With publication off no state is known, so nothing is warned or unpublished. */
  readonly publication: PublicationService | undefined;
  readonly spool: Spool;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * Issue #6, first half: what logins, submissions and deliveries tell the lifecycle (indicators, the
 * prompt republication of a returning mailbox). Built before delivery, which reports to it.
 */
export interface LifecycleEventsPart {
  readonly indicators: IndicatorRecorder;
  /** The message counts of submissions and deliveries, written once a second; stopped before Redis. */
  readonly indicatorBuffer: IndicatorBuffer;
  readonly activity: LifecycleActivity;
  readonly events: LifecycleEvents;
}

/** The daily indicators' writer (stateless: the registry's change counter builds its own). */
export function indicatorRecorder(config: Config, redis: Redis): IndicatorRecorder {
  const lc = config.lifecycle;
  return new IndicatorRecorder({
    redis,
    prefix: config.redis.prefix,
    timeZone: lc.timeZone,
    retentionDays: lc.indicatorsRetentionDays,
    maxSoftwarePerDay: lc.maxSoftwarePerDay,
  });
}

export function buildLifecycleEvents(d: LifecyclePartDeps): LifecycleEventsPart {
  const prefix = d.config.redis.prefix;
  const { redis } = d.backends;
  const { publisher } = lifecyclePublicationPorts(d.publication);
  const indicators = indicatorRecorder(d.config, redis);
  const activity = new LifecycleActivity({
    redis,
    prefix,
    indicators,
    publisher,
    journal: d.journal,
    logger: d.logger,
    observer: lifecycleMetricsObserver(d.metrics),
  });
  const indicatorBuffer = new IndicatorBuffer({ recorder: indicators, logger: d.logger });
  const events = new LifecycleEvents({
    indicators: indicatorBuffer,
    activity,
    clock: d.clock,
    logger: d.logger,
  });
  return { indicators, indicatorBuffer, activity, events };
}

/**
 * Who else reads a mailbox's inactivity warning (issue #13 item 5): for a PER mailbox, its owner's
 * other addresses; for an ORG or CAB one, each manager's own addresses. A person's addresses are
 * the active mailboxes she owns here and those the national extraction lists for her elsewhere.
 */
function warningAudience(
  registry: BalRegistry,
  mirrors: Pick<DirectoryMirrors, 'directory'>,
  ourDomains: readonly string[],
): (bal: Bal) => Promise<{ owner: string[]; managers: string[] }> {
  const national = { addressesOf: (id: string) => mirrors.directory.addressesOf(id), ourDomains };
  return async (bal) => {
    if (bal.type === 'PER') {
      return { owner: await ownedAddresses(registry, bal.owner, national), managers: [] };
    }
    if (bal.type !== 'ORG' && bal.type !== 'CAB') return { owner: [], managers: [] };
    const managers = (await registry.grants(bal.address)).flatMap((g) =>
      g.right === 'manager' && !g.expired && g.subject.kind === 'person' ? [g.subject.nationalId] : [],
    );
    const each = await Promise.all(managers.map((id) => ownedAddresses(registry, id, national)));
    return { owner: [], managers: each.flat() };
  };
}

/** Issue #6, second half: the daily job (warnings into the mailbox, unpublication, purge). */
export interface LifecycleJobPart {
  readonly scheduler: LifecycleScheduler;
  /**
   * Development only (issue #14 item 9): the daily run now, planned as if it were `at`, so that a
   * newcomer sees the warning, the unpublication and the republication without waiting 30 or 45
   * days. Same runner options and run lock as the daily job; only the clock differs.
   */
  runAt(at: Date): Promise<RunSummary>;
  start(): Promise<void>;
  /** Stops the daily job's worker and closes its connection. */
  stop(): Promise<void>;
}

export function buildLifecycleJob(
  d: LifecyclePartDeps & {
    readonly delivery: DeliveryQueue;
    readonly mirrors: Pick<DirectoryMirrors, 'directory'>;
  },
): LifecycleJobPart {
  const lc = d.config.lifecycle;
  const prefix = d.config.redis.prefix;
  const { redis } = d.backends;
  const { publisher, states } = lifecyclePublicationPorts(d.publication);
  const ours = new Set(d.config.domains.map((x) => normalizeDomain(x) ?? x));
  const runnerWith = (clock: Clock): LifecycleRunner =>
    new LifecycleRunner({
      redis,
      prefix,
      config: lc,
      registry: d.registry,
      activity: ActivityStore.withPrefix(redis, prefix),
      publication: states,
      publisher,
      warnings: {
        // Into our store for our domains; through the relay, like any submitted mail, for an
        // owner's or manager's address at another operator.
        deliver: async (address, raw) => {
          const domain = address.slice(address.lastIndexOf('@') + 1);
          const route = ours.has(normalizeDomain(domain) ?? domain) ? 'local' : 'relay';
          await d.delivery.inject({ from: '', to: address, route, raw });
        },
      },
      warningAudience: warningAudience(d.registry, d.mirrors, d.config.domains),
      mailPurger: storePurger(d.backends.store),
      clock,
      journal: d.journal,
      logger: d.logger,
      observer: lifecycleMetricsObserver(d.metrics),
    });
  const runner = runnerWith(d.clock);
  const connection: Redis = d.backends.connect('lifecycle');
  const scheduler = new LifecycleScheduler({
    connection,
    bullPrefix: `${prefix}bull`,
    config: lc,
    runner,
    logger: d.logger,
  });
  return {
    scheduler,
    runAt: (at) => runnerWith({ now: () => at }).runOnce(),
    start: () => scheduler.start(),
    stop: async () => {
      await scheduler.stop();
      await connection.quit().catch(() => connection.disconnect());
    },
  };
}
