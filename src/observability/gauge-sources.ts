import type { Clock } from '../shared/index.js';
import type { MetricSources } from './metrics.js';

/**
 * What the live-state gauges read at scrape time, as the services expose it. Structural, so that
 * observability (a base folder) knows none of the services.
 */
export interface GaugeSourcePorts {
  readonly clock: Clock;
  readonly spool: { stats(now: Date): Promise<{ messages: number; oldestAgeSeconds: number }> };
  readonly queue: {
    counts(): Promise<ReadonlyArray<{ queue: string; node: string; state: string; count: number }>>;
    nodes(): Promise<ReadonlyArray<{ node: string; lastSeen: string }>>;
    handOffWaiting(): { local: number; relay: number };
  };
  readonly relay: { connections(): ReadonlyMap<string, number> };
  readonly lockouts: { activeLockouts(): Promise<Record<string, number>> };
  readonly redis: { ping(): Promise<string> };
  readonly store: { check(): Promise<{ imap: boolean; lmtp: boolean }> };
  readonly whitelist: {
    current(): {
      size: number;
      domainCount: number;
      operatorCount: number;
      generatedAt: string;
      rejected: readonly unknown[];
    };
  };
  readonly bals: { countByStatusAndType(): Promise<Record<string, Record<string, number>>> };
  readonly mirrors: Required<Pick<MetricSources, 'mirrors' | 'crlNextUpdates'>>;
  /** Absent when publication is disabled: no states, no drift report. */
  readonly publication:
    | {
        countByState(): Promise<Record<string, number>>;
        lastDrift(): Promise<{
          publishedMissing: { count: number };
          unpublishedPresent: { count: number };
        } | null>;
      }
    | undefined;
  /** `validTo` of our certificate in service (it changes on reload). */
  readonly certificateNotAfter: () => string;
}

/** The gauges' sources over the services (observability/metrics.ts reads them at scrape time). */
export function gaugeSources(p: GaugeSourcePorts): MetricSources {
  const { clock } = p;
  return {
    spoolStats: () => p.spool.stats(clock.now()),
    queueJobs: () => p.queue.counts(),
    nodes: () => p.queue.nodes(),
    handOffWaiting: () => p.queue.handOffWaiting(),
    relayConnections: () =>
      [...p.relay.connections()].map(([destination, count]) => ({ destination, count })),
    authLockoutsActive: () => p.lockouts.activeLockouts(),
    redisUp: async () => (await p.redis.ping().catch(() => '')) === 'PONG',
    storeUp: () => p.store.check(),
    whitelist: () => {
      const w = p.whitelist.current();
      return {
        entries: w.size,
        domains: w.domainCount,
        operators: w.operatorCount,
        rejected: w.rejected.length,
        ageSeconds: (clock.now().getTime() - Date.parse(w.generatedAt)) / 1000,
      };
    },
    bals: async () => {
      const counts = await p.bals.countByStatusAndType();
      return Object.entries(counts).flatMap(([status, byType]) =>
        Object.entries(byType).map(([type, count]) => ({ type, status, count })),
      );
    },
    ...p.mirrors,
    publicationStates: async () => (await p.publication?.countByState()) ?? {},
    publicationDrift: async () => {
      const r = await p.publication?.lastDrift();
      return r
        ? { publishedMissing: r.publishedMissing.count, unpublishedPresent: r.unpublishedPresent.count }
        : undefined;
    },
    certificateExpirySeconds: () => (Date.parse(p.certificateNotAfter()) - clock.now().getTime()) / 1000,
  };
}
