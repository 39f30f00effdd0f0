import type { ReadinessCheck } from './http-server.js';

/** A listener as readiness sees it: ready when disabled, or when it listens. */
export interface ListenerReadiness {
  readonly enabled: boolean;
  listening(): boolean;
}

export interface ReadinessPorts {
  readonly redis: { ping(): Promise<string> };
  /** The store's last health probe (store/StoreHealthMonitor.up). */
  readonly storeUp: () => boolean;
  readonly smtp: ListenerReadiness;
  readonly submission: ListenerReadiness;
  readonly imap: ListenerReadiness;
}

/** `/readyz`: Redis answers, the store answered its last probe, every enabled listener listens. */
export function readinessChecks(p: ReadinessPorts): ReadinessCheck[] {
  const listener =
    (l: ListenerReadiness): ReadinessCheck['check'] =>
    () =>
      Promise.resolve(!l.enabled || l.listening());
  return [
    { name: 'redis', check: async () => (await p.redis.ping()) === 'PONG' },
    { name: 'store', check: () => Promise.resolve(p.storeUp()) },
    { name: 'smtp', check: listener(p.smtp) },
    { name: 'submission', check: listener(p.submission) },
    { name: 'imap', check: listener(p.imap) },
  ];
}
