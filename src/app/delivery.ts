import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import {
  DeliveryQueue,
  type DestinationState,
  DestinationWorker,
  DsnNotifier,
  type GeneratedRoute,
  type Spool,
  type SpoolEnvelope,
  localDestination,
  relayDestination,
} from '../delivery/index.js';
import type { WhitelistHolder } from '../directory/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import { RelayTransport, systemMxLookup } from '../relay/index.js';
import { routeSubmission } from '../routing/index.js';
import type { Backends } from './backends.js';
import { lmtpTransport } from './store-adapters.js';
import type { TrustPart } from './trust.js';

export interface DeliveryPartDeps {
  readonly config: Config;
  readonly backends: Backends;
  readonly spool: Spool;
  readonly trust: TrustPart;
  readonly whitelist: WhitelistHolder;
  /** Told of every settled message (the lifecycle's `received` indicators). */
  readonly onSettled: (envelope: SpoolEnvelope, states: readonly DestinationState[]) => void;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface DeliveryPart {
  readonly queue: DeliveryQueue;
  readonly worker: DestinationWorker;
  readonly relay: RelayTransport;
  start(): Promise<void>;
  /** Stops the queues' workers (draining), then closes the relay's connections. Needs Redis. */
  stop(): Promise<void>;
  /**
   * Waits for the attempts in flight (up to the drain deadline) and closes the store's and the
   * relay's connections; needs no Redis, so it still runs when the stop gives up waiting for Redis.
   */
  drain(): Promise<void>;
}

/** The delivery queue and its worker: LMTP for our mailboxes, the relay for other operators. */
export function buildDelivery(d: DeliveryPartDeps): DeliveryPart {
  const { config, logger, metrics, spool, clock, journal } = d;
  const hostname = config.smtp.hostname;
  const relay = new RelayTransport({
    trust: () => d.trust.current(),
    profile: { minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc },
    whitelist: () => d.whitelist.current(),
    heloName: config.relay.heloName ?? hostname,
    routes: config.relay.routes,
    port: config.relay.port,
    lookupMx: systemMxLookup({
      timeoutMs: config.relay.dns.timeoutSeconds * 1000,
      tries: config.relay.dns.tries,
      servers: config.relay.dns.servers,
    }),
    connectTimeoutMs: config.relay.connectTimeoutSeconds * 1000,
    commandTimeoutMs: config.relay.commandTimeoutSeconds * 1000,
    maxConnectionsPerDestination: config.relay.maxConnectionsPerDestination,
    maxMessagesPerConnection: config.relay.maxMessagesPerConnection,
    idleMs: config.relay.idleSeconds * 1000,
    maxConnectionAgeMs: config.relay.maxConnectionAgeSeconds * 1000,
    clock,
    logger: logger.child({ component: 'relay' }),
  });
  const policy = {
    retryInitialSeconds: config.delivery.retryInitialSeconds,
    retryMaxSeconds: config.delivery.retryMaxSeconds,
    maxAgeHours: config.delivery.maxAgeHours,
    delayNoticeHours: config.delivery.delayNoticeHours,
  };
  const ourDomains = new Set(config.domains);
  const routeOf = (address: string): GeneratedRoute => {
    const r = routeSubmission(address, ourDomains, d.whitelist.current());
    return r.kind === 'lookup' ? 'local' : r.kind === 'relay' ? 'relay' : undefined;
  };
  // The notifier and the worker hand messages and events to the queue built last, which needs the
  // worker: these closures run only once the queue works.
  const notifier = new DsnNotifier({
    spool,
    clock,
    logger: logger.child({ component: 'dsn' }),
    journal,
    hostname,
    // Not MAILER-DAEMON@<smtp.hostname>: that name (localhost by default) is no mail domain of ours.
    from: config.delivery.dsnFrom ?? `MAILER-DAEMON@${config.domains[0]!}`,
    policy: { delayByDefault: config.delivery.delayNoticeByDefault, maxAgeHours: policy.maxAgeHours },
    routeOf,
    inject: (m) => queue.inject(m),
    onSent: (action) => metrics.dsnSent.inc({ action }),
  });
  const lmtp = lmtpTransport(d.backends.store, {
    lhlo: hostname,
    timeoutMs: config.delivery.lmtpTimeoutSeconds * 1000,
    size: config.delivery.lmtpConnections,
    idleMs: config.delivery.lmtpIdleSeconds * 1000,
  });
  const worker = new DestinationWorker({
    spool,
    clock,
    logger: logger.child({ component: 'delivery' }),
    journal,
    policy,
    local: localDestination(lmtp),
    relay: relayDestination(relay, { trustRetryAttempts: config.relay.trustRetryAttempts }),
    notifier,
    observer: {
      attempt: (kind, outcome, reason) => {
        if (kind === 'local') metrics.deliveryAttempts.inc({ outcome });
        else metrics.relayAttempts.inc({ outcome, reason });
      },
      delivered: (kind, s) => (kind === 'local' ? metrics.deliveryLatency : metrics.relayLatency).observe(s),
      finalRelay: (outcome, patient) => metrics.relayRecipients.inc({ outcome, patient: String(patient) }),
    },
    onSettled: (envelope, states) => {
      d.onSettled(envelope, states);
      queue.emit('settled', envelope, states);
    },
    onDeferred: (envelope, state) => queue.emit('deferred', envelope, state),
  });
  const queue: DeliveryQueue = new DeliveryQueue({
    connect: (name) => d.backends.connect(name),
    spool,
    worker,
    clock,
    logger: logger.child({ component: 'queue' }),
    options: {
      prefix: `${config.redis.prefix}bull`,
      nodeId: config.node.id,
      localConcurrency: config.delivery.concurrency,
      relayConcurrency: config.relay.concurrency,
      relayPerDestination: config.relay.maxConnectionsPerDestination,
      relayEnabled: config.relay.enabled,
      lockSeconds: config.delivery.lockSeconds,
      reconcileSeconds: config.delivery.reconcileSeconds,
      drainSeconds: config.delivery.drainSeconds,
      handOffWait: {
        entries: config.delivery.handOffWaitEntries,
        bytes: config.delivery.handOffWaitBytes,
      },
    },
  });
  return {
    queue,
    worker,
    relay,
    start: async () => {
      const { removedTemporary } = await queue.start();
      metrics.spoolTemporarySwept.inc(removedTemporary);
    },
    stop: async () => {
      try {
        await queue.stop();
      } finally {
        lmtp.close();
        relay.close();
      }
    },
    drain: async () => {
      try {
        await queue.drainAttempts();
      } finally {
        lmtp.close();
        relay.close();
      }
    },
  };
}
