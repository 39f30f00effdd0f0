import type http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '../config/index.js';
import {
  type ReadinessPorts,
  createObservabilityServer,
  listenHttp,
  readinessChecks,
} from '../observability/index.js';
import type { Metrics } from '../observability/index.js';
import { explainListen } from '../shared/index.js';

/** `/metrics`, `/healthz` and `/readyz` on `metrics.host:metrics.port`. */
export function buildObservability(d: {
  readonly config: Config;
  readonly metrics: Metrics;
  readonly readiness: ReadinessPorts;
}): { readonly server: http.Server; listen(): Promise<AddressInfo>; stop(): Promise<void> } {
  const server = createObservabilityServer(d.metrics.registry, readinessChecks(d.readiness));
  const { host, port } = d.config.metrics;
  return {
    server,
    listen: () => listenHttp(server, port, host).catch(explainListen('metrics', 'metrics.port', host, port)),
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
