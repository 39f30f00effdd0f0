import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface ReadinessCheck {
  readonly name: string;
  check(): Promise<boolean>;
}

/**
 * `/metrics` (Prometheus text format), `/healthz` (the process answers) and `/readyz` (every
 * dependency answers: Redis, the store, the listeners). Readiness reports each check by name so an
 * operator sees which one failed.
 */
export function createObservabilityServer(
  registry: Registry,
  checks: readonly ReadinessCheck[],
): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res.writeHead(405, { allow: 'GET, HEAD' }).end();
      return;
    }
    switch (url.pathname) {
      case '/metrics':
        registry.metrics().then(
          (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
          () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n'),
        );
        return;
      case '/healthz':
        res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}\n');
        return;
      case '/readyz':
        void readiness(checks).then(({ ready, results }) =>
          res
            .writeHead(ready ? 200 : 503, { 'content-type': 'application/json' })
            .end(JSON.stringify({ status: ready ? 'ready' : 'not ready', checks: results }) + '\n'),
        );
        return;
      default:
        res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
    }
  });
}

async function readiness(checks: readonly ReadinessCheck[]) {
  const results: Record<string, boolean> = {};
  await Promise.all(
    checks.map(async (c) => {
      results[c.name] = await c.check().catch(() => false);
    }),
  );
  return { ready: Object.values(results).every(Boolean), results };
}

export function listenHttp(server: http.Server, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve(server.address() as AddressInfo);
    });
  });
}
