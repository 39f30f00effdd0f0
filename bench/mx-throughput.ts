import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type * as App from '../src/app/index.js';
import type { SpoolEnvelope } from '../src/delivery/index.js';
import { createLogger } from '../src/observability/index.js';
import { benchConfig, benchRoot } from './bench-gateway.js';
import type { MxClientJob, MxClientMessage } from './mx-client.js';
import { MemoryPeak, type Percentiles, loadAverage, percentiles } from './stats.js';

/**
 * MX throughput on loopback against the real embedded default (own Redis and Dovecot): a whitelisted
 * peer sends MESSAGES messages (after up to 50 unmeasured, delivered before the measure begins) over
 * CONNECTIONS parallel TLS connections, kept (reuse) or one per message. Prints acceptance rate and 250-reply latency (durability: fsync before 250), delivery
 * rate and acceptance→store latency, and the gateway's CPU per message: the client runs in a worker
 * thread (bench/mx-client.ts) whose own CPU is taken out of the process's, so that nodemailer and
 * its TLS are not counted (the embedded Redis and Dovecot are other processes, not counted either).
 * Bounded in count; loopback only.
 *
 * Alone: `node --import tsx bench/mx-throughput.ts <messages> <connections> <KiB> [reuse|new]`;
 * BENCH_GATEWAY=dist runs the built gateway (`dist/`, as production does; build it first) instead of
 * the sources under tsx, e.g. for a CPU profile (`node --cpu-prof --import tsx bench/…`).
 */

/** The gateway's code: the sources, or their build (BENCH_GATEWAY=dist). */
async function gatewayCode(): Promise<typeof App> {
  const entry = process.env.BENCH_GATEWAY === 'dist' ? '../dist/app/index.js' : '../src/app/index.js';
  return (await import(entry)) as typeof App;
}
export interface MxBenchResult {
  readonly messages: number;
  readonly connections: number;
  readonly sizeBytes: number;
  readonly reuse: boolean;
  readonly acceptedPerSecond: number;
  readonly ackLatencyMs: Percentiles;
  readonly deliveredPerSecond: number;
  readonly deliveryLatencyMs: Percentiles;
  /** CPU of the gateway (this process less the client thread), first send to last delivery. */
  readonly gatewayCpuMsPerMessage: number;
  readonly clientCpuMsPerMessage: number;
  readonly peakRssMiB: number;
}

export async function runMxBench(
  messages: number,
  connections: number,
  sizeBytes: number,
  reuse = true,
): Promise<MxBenchResult> {
  const root = benchRoot('mx');
  const pkiDir = path.join(root, 'pki');
  const p = (f: string) => path.join(pkiDir, f);
  const config = benchConfig(root, {
    smtp: { mx: { host: '127.0.0.1', port: 0 }, submission: { enabled: false }, maxRecipients: 10 },
  });
  const peak = new MemoryPeak().start(100);
  const { Gateway } = await gatewayCode();
  const gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) });
  let worker: Worker | undefined;
  try {
    const bal = `bench.${randomUUID().slice(0, 8)}@op.mssante.test`;
    await gw.registry.create(
      { address: bal, type: 'PER', owner: '810000000001' },
      { kind: 'system', id: 'bench' },
    );
    // Warm-up messages first (JIT, connections, the LMTP pool), all delivered before the
    // measured ones start: what is measured is the steady state.
    const warmup = Math.min(50, messages);
    const deliveryLatencies: number[] = [];
    let settled = 0;
    let lastDeliveredAt = 0;
    let warmDelivered: () => void = () => undefined;
    const allWarmDelivered = new Promise<void>((resolve) => (warmDelivered = resolve));
    const allDelivered = new Promise<void>((resolve) => {
      gw.delivery.on('settled', (env: SpoolEnvelope) => {
        settled += 1;
        if (settled === warmup) warmDelivered();
        if (settled <= warmup) return;
        const now = Date.now();
        lastDeliveredAt = now;
        deliveryLatencies.push(now - Date.parse(env.receivedAt));
        if (deliveryLatencies.length === messages) resolve();
      });
    });
    // One single-connection transport per client worker, each sending in turn: latency is then the
    // SMTP transaction itself, not time spent queued in the client.
    const job: MxClientJob = {
      port: gw.addresses.mx!.port,
      messages,
      warmup,
      connections,
      sizeBytes,
      reuse,
      to: bal,
      tls: { key: p('peer-trusted.key'), cert: p('peer-trusted.chain.pem'), ca: p('ca/root.crt') },
    };
    // Node 20 does not hand tsx's loader hooks to a worker: the worker registers them itself.
    const clientUrl = new URL('./mx-client.ts', import.meta.url).href;
    const client = new Worker(
      `import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(clientUrl)}); });`,
      { eval: true, workerData: job },
    );
    worker = client;
    const ackLatencies: number[] = [];
    let started = 0;
    let cpu0 = process.cpuUsage();
    const sent = new Promise<{ cpuMs: number; at: number }>((resolve, reject) => {
      client.on('error', reject);
      client.on('exit', (code) => reject(new Error(`client thread exited (${code}) before it was done`)));
      client.on('message', (m: MxClientMessage) => {
        if (m.kind === 'warm') {
          void allWarmDelivered.then(() => {
            started = Date.now();
            cpu0 = process.cpuUsage();
            client.postMessage('go');
          });
        } else if (m.kind === 'ack') ackLatencies.push(m.ms);
        else if (m.kind === 'done') resolve({ cpuMs: m.cpuMs, at: Date.now() });
        else reject(new Error(`client: ${m.error}`));
      });
    });
    const { cpuMs: clientCpuMs, at: sentAt } = await sent;
    await allDelivered;
    const cpu = process.cpuUsage(cpu0);
    const deliveredSeconds = (lastDeliveredAt - started) / 1000;
    return {
      messages,
      connections,
      sizeBytes,
      reuse,
      acceptedPerSecond: messages / ((sentAt - started) / 1000),
      ackLatencyMs: percentiles(ackLatencies),
      deliveredPerSecond: messages / deliveredSeconds,
      deliveryLatencyMs: percentiles(deliveryLatencies),
      gatewayCpuMsPerMessage: ((cpu.user + cpu.system) / 1000 - clientCpuMs) / messages,
      clientCpuMsPerMessage: clientCpuMs / messages,
      peakRssMiB: peak.rssMiB,
    };
  } finally {
    await worker?.terminate();
    peak.stop();
    await gw.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** The figures of one run, as run.ts and the command line print them. */
export function formatMxBench(r: MxBenchResult): string {
  return [
    `mx: ${r.messages} messages of ${Math.round(r.sizeBytes / 1024)} KiB over ${r.connections} TLS connections (${r.reuse ? 'reused' : 'one per message'}); load ${loadAverage()}`,
    `  accepted  ${r.acceptedPerSecond.toFixed(1)} msg/s; 250 latency p50 ${r.ackLatencyMs.p50} ms, p95 ${r.ackLatencyMs.p95} ms, p99 ${r.ackLatencyMs.p99} ms`,
    `  delivered ${r.deliveredPerSecond.toFixed(1)} msg/s; 250→store p50 ${r.deliveryLatencyMs.p50} ms, p95 ${r.deliveryLatencyMs.p95} ms, p99 ${r.deliveryLatencyMs.p99} ms`,
    `  CPU per message: gateway ${r.gatewayCpuMsPerMessage.toFixed(2)} ms (process less the client thread), client ${r.clientCpuMsPerMessage.toFixed(2)} ms`,
    `  peak RSS of the process (gateway and client) ${r.peakRssMiB.toFixed(0)} MiB`,
  ].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === path.resolve(process.argv[1])) {
  const [messages = 200, connections = 20, kib = 8] = process.argv.slice(2, 5).map(Number);
  console.log(formatMxBench(await runMxBench(messages, connections, kib * 1024, process.argv[5] !== 'new')));
}
