import { mkdirSync } from 'node:fs';
import type { GatewayAuthenticator } from '../auth/index.js';
import { type Clock, systemClock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { type DeliveryQueue, type DestinationWorker, Spool } from '../delivery/index.js';
import { type DirectoryMirrors, WhitelistHolder, loadWhitelistFile } from '../directory/index.js';
import type { ImapFrontEnd } from '../imap/index.js';
import type { LifecycleScheduler } from '../lifecycle/index.js';
import {
  type AuditJournal,
  FileAuditJournal,
  type Logger,
  type Metrics,
  createMetrics,
  gaugeSources,
} from '../observability/index.js';
import type { TrustMaterial } from '../pki/index.js';
import { recordMailboxUses, type Portal } from '../portal/index.js';
import type { PublicationService } from '../publication/index.js';
import type { RelayTransport } from '../relay/index.js';
import type { BalRegistry } from '../registry/index.js';
import type { MxServer, SubmissionServer } from '../smtp/index.js';
import { StoreHealthMonitor } from '../store/index.js';
import { buildAuthenticator, startSessionWatch } from './auth.js';
import { type Backends, startBackends } from './backends.js';
import { buildDelivery } from './delivery.js';
import { buildDirectory, startDirectory } from './directory.js';
import { type GatewayAddresses, describeAddresses } from './gateway-addresses.js';
import { type LifecycleEventsPart, buildLifecycleEvents, buildLifecycleJob } from './lifecycle.js';
import { openListeners } from './open-listeners.js';
import { buildPublication, startDevDirectoryPart, startPublication } from './publication.js';
import { buildRegistry } from './registry.js';
import { StartTimings } from './start-timings.js';
import { StopOrder } from './stop-order.js';
import { type TrustPart, buildTrust } from './trust.js';

export { type GatewayAddresses, describeAddresses } from './gateway-addresses.js';

export interface GatewayOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
  /**
   * Called when a start that failed begins to stop what it had started: from then on, commands in
   * flight may be rejected by their closed connections (the process entry then ignores those).
   */
  readonly onStartAborted?: () => void;
}

/** A started gateway: its parts (for the process entry, tests and benchmarks), reload and stop. */
export interface Gateway {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly addresses: GatewayAddresses;
  readonly journal: AuditJournal;
  readonly backends: Backends;
  /** Our certificate, key, authorities and CRLs in service (replaced by a reload). */
  readonly trust: TrustMaterial;
  readonly whitelist: WhitelistHolder;
  readonly mirrors: DirectoryMirrors;
  /** Publication in the national directory (publication.enabled). */
  readonly publication: PublicationService | undefined;
  readonly registry: BalRegistry;
  readonly spool: Spool;
  readonly delivery: DeliveryQueue;
  readonly worker: DestinationWorker;
  readonly relay: RelayTransport;
  readonly lifecycle: LifecycleEventsPart & { readonly scheduler: LifecycleScheduler };
  readonly authenticator: GatewayAuthenticator;
  readonly mx: MxServer | undefined;
  readonly submission: SubmissionServer | undefined;
  readonly imap: ImapFrontEnd | undefined;
  /** The professionals' portal (portal.enabled, issue #13). */
  readonly portal: Portal | undefined;
  /** Milliseconds each step of the start took (StartTimings), for the `gateway.ready` event. */
  readonly startSteps: Readonly<Record<string, number>>;
  /**
   * Reloads the whitelist (a refresh of its mirror, whatever its source) and the trust material,
   * keeping the last good copy of what fails (SIGHUP).
   */
  reload(): Promise<void>;
  /** Graceful stop, in the reverse order of the start: listeners, workers, then backends. Idempotent. */
  stop(): Promise<void>;
}

/**
 * The composition root (STYLE.md convention 4): builds every part from explicit dependencies, in
 * the order written here, and stops them in reverse. A start that fails stops what it had started.
 */
export async function startGateway(config: Config, options: GatewayOptions): Promise<Gateway> {
  const stops = new StopOrder(options.logger);
  try {
    return await assemble(config, options, stops);
  } catch (err) {
    options.onStartAborted?.();
    await stops.stopAll();
    throw err;
  }
}

/** `Gateway.start(config, { logger })`. */
export const Gateway = { start: startGateway };

async function assemble(config: Config, options: GatewayOptions, stops: StopOrder): Promise<Gateway> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const timings = new StartTimings();
  const metrics = createMetrics();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
  // In development, Redis and Dovecot start (child processes: seconds on a busy machine) while the
  // trust material is loaded, after the development PKI is generated at the first start (a dozen
  // RSA keys: seconds too). Production refuses bad trust material before it starts anything.
  const startBackendsTimed = () => timings.time('backends', () => startBackends(config, logger, timings));
  const backendsStarting = config.mode === 'development' ? startBackendsTimed() : undefined;
  // Awaited below; until then, a failure must not count as an unhandled rejection.
  backendsStarting?.catch(() => undefined);
  let trust: TrustPart;
  let whitelist: WhitelistHolder;
  try {
    trust = await timings.time('trust', () => buildTrust(config, logger));
    whitelist = new WhitelistHolder(
      await loadWhitelistFile(config.whitelistFile, clock, config.directory.whitelist.maxInvalidShare),
    );
  } catch (err) {
    // Not in the stop order yet: stopped here once started.
    await backendsStarting?.then(
      (started) => started.stop(),
      () => undefined,
    );
    throw err;
  }
  const journal = new FileAuditJournal({
    dir: `${config.dataDir}/journal`,
    clock,
    node: config.node.id,
    retentionDays: config.journal.retentionDays,
  });
  stops.add('journal', {
    stop: () => {
      journal.record({ event: 'gateway.stopped' });
      journal.close();
    },
  });
  const backends = stops.add('backends', await (backendsStarting ?? startBackendsTimed()));
  timings.lap('trustAndBackends');
  // "Qui a utilisé ma boîte" (portal, #13): every node indexes the delegated uses it journals in
  // Redis, portal on or off, so that the page sees the uses of all nodes.
  journal.onRecord(recordMailboxUses({ redis: backends.redis, prefix: config.redis.prefix, logger }));
  const base = { config, backends, trust, clock, journal, logger, metrics };

  // The registry tells publication of every change; publication reads the mailboxes back from the
  // registry, but only once it works (after its start below).
  const devDirectory = await startDevDirectoryPart(base);
  if (devDirectory) stops.add('dev-directory', devDirectory);
  const publication = buildPublication({
    ...base,
    bals: { get: (a) => registry.get(a), list: (q) => registry.list(q) },
    ...(devDirectory ? { baseUrl: devDirectory.baseUrl } : {}),
  });
  if (publication) stops.add('publication', publication, { redis: true });
  const mirrors = stops.add('directory', buildDirectory({ ...base, whitelist, publication }), {
    redis: true,
  });
  const registry = buildRegistry({ ...base, publication, mirrors });
  if (publication) await startPublication(publication, logger);
  await startDirectory(mirrors, trust);
  timings.lap('directory');

  const spool = new Spool(config.dataDir);
  await spool.init();
  timings.lap('spool');
  const lifecycleDeps = {
    ...base,
    registry,
    publication,
    spool,
    logger: logger.child({ component: 'lifecycle' }),
  };
  const lifecycle = buildLifecycleEvents(lifecycleDeps);
  // Stopped after delivery (whose settled messages it counts), before Redis closes.
  stops.add('indicators', lifecycle.indicatorBuffer, { redis: true });
  const delivery = buildDelivery({
    ...base,
    spool,
    whitelist,
    onSettled: (e, s) => lifecycle.events.onSettled(e, s),
  });
  // Stopped right after the queue's step, and waited for even when that step is abandoned (Redis
  // lost): deliveries in flight end and record their outcome, then the store connections close.
  stops.add('delivery-attempts', { stop: () => delivery.drain() });
  stops.add('delivery', delivery, { redis: true });
  const lifecycleJob = stops.add(
    'lifecycle',
    buildLifecycleJob({ ...lifecycleDeps, delivery: delivery.queue, mirrors }),
    { redis: true },
  );
  const authenticator = await buildAuthenticator({ ...base, registry, lifecycle: lifecycle.events });
  const sessions = stops.add('sessions', await startSessionWatch({ ...base, registry, authenticator }), {
    redis: true,
  });
  const health = new StoreHealthMonitor(backends.store, () => void delivery.queue.retryLocalNow(), logger);
  Object.assign(
    metrics.sources,
    gaugeSources({
      clock,
      spool,
      queue: delivery.queue,
      relay: delivery.relay,
      lockouts: authenticator.limiter,
      redis: backends.redis,
      store: health,
      whitelist,
      bals: registry,
      mirrors: mirrors.metricSources(),
      publication,
      certificateNotAfter: () => trust.current().certificate.validTo,
    }),
  );
  timings.lap('services');
  await delivery.start();
  await lifecycleJob.start();
  stops.add('health', health).start();
  timings.lap('workers');

  const reload = async (): Promise<void> => {
    const log = logger.child({ event: 'gateway.reload' });
    try {
      const r = await mirrors.refresh('whitelist');
      log.info({ outcome: r.outcome, reason: r.reason }, 'whitelist refreshed');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'whitelist refresh failed; last good copy kept');
    }
    trust.reload(mirrors.crlFiles());
    journal.record({ event: 'gateway.reloaded' });
  };

  // The listeners, last: a connection finds every service it needs.
  const listeners = await openListeners(
    {
      ...base,
      whitelist,
      registry,
      publication,
      spool,
      delivery,
      lifecycle: lifecycle.events,
      activity: lifecycle.activity,
      lifecycleRunAt: (at: Date) => lifecycleJob.runAt(at),
      mirrors,
      authenticator,
      sessions,
      health,
    },
    stops,
    async () => {
      await reload();
      return { certificateNotAfter: trust.current().certificate.validTo };
    },
  );
  const { addresses } = listeners;
  timings.lap('listeners');
  journal.record({
    event: 'gateway.started',
    mode: config.mode,
    embedded: backends.embedded,
    addresses: describeAddresses(addresses),
  });
  let stopping: Promise<void> | undefined;
  return {
    ...{ config, logger, clock, metrics, addresses, journal, backends, whitelist, mirrors, publication },
    ...{ registry, spool, delivery: delivery.queue, worker: delivery.worker, relay: delivery.relay },
    lifecycle: { ...lifecycle, scheduler: lifecycleJob.scheduler },
    authenticator,
    mx: listeners.mx,
    submission: listeners.submission,
    imap: listeners.imap,
    portal: listeners.portal,
    startSteps: timings.steps(),
    get trust() {
      return trust.current();
    },
    reload,
    stop: () => (stopping ??= stopAll(stops, backends, config.delivery.drainSeconds, logger)),
  };
}

/** Past the drain, this long more for the steps that need Redis before they are abandoned. */
const REDIS_GRACE_MS = 2_000;

/**
 * The stop in order, with Redis allowed to be away: a stop that finds Redis unreachable, sees it go
 * during the stop, or is still waiting on it past the drain deadline stops waiting for the steps that
 * need Redis (StopOrder.stopAll), so that the rest (listeners, Dovecot, the embedded Redis, the
 * journal) stops in time. What was acknowledged is in the spool; the next start queues it again.
 */
async function stopAll(
  stops: StopOrder,
  backends: Backends,
  drainSeconds: number,
  logger: Logger,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onLost: (() => void) | undefined;
  const abandon = new Promise<string>((resolve) => {
    onLost = () => resolve('redis_unreachable');
    if (backends.redis.status !== 'ready') resolve('redis_unreachable');
    else backends.redis.once('reconnecting', onLost);
    timer = setTimeout(() => resolve('deadline'), drainSeconds * 1000 + REDIS_GRACE_MS);
  });
  void abandon.then((reason) =>
    logger.warn({ event: 'gateway.stop.redis_abandoned', reason }, 'no longer waiting for Redis'),
  );
  try {
    await stops.stopAll(abandon);
  } finally {
    clearTimeout(timer);
    if (onLost) backends.redis.off('reconnecting', onLost);
  }
}
