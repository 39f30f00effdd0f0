import type { Metrics } from '../observability/index.js';
import type { LifecycleObserver } from './lifecycle-ports.js';

/** The lifecycle's counts as `mssgw_lifecycle_{unpublications,republications,warnings}_total{outcome}`. */
export function lifecycleMetricsObserver(
  metrics: Pick<Metrics, 'lifecycleUnpublications' | 'lifecycleRepublications' | 'lifecycleWarnings'>,
): LifecycleObserver {
  return {
    unpublication: (outcome) => metrics.lifecycleUnpublications.inc({ outcome }),
    republication: (outcome) => metrics.lifecycleRepublications.inc({ outcome }),
    warning: (outcome) => metrics.lifecycleWarnings.inc({ outcome }),
  };
}
