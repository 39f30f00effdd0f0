import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { Gateway } from '../src/app/index.js';
import type { SpoolEnvelope } from '../src/delivery/index.js';
import { createLogger } from '../src/observability/index.js';
import { benchConfig, benchRoot } from './bench-gateway.js';
import { MemoryPeak, type Percentiles, percentiles } from './stats.js';

/**
 * MX throughput on loopback against the real embedded default (own Redis and Dovecot): a whitelisted
 * peer sends MESSAGES messages over CONNECTIONS parallel TLS connections. Prints acceptance rate
 * and 250-reply latency (durability: fsync before 250), then delivery rate and acceptance→store
 * latency. Bounded in count; loopback only.
 */
export interface MxBenchResult {
  readonly messages: number;
  readonly connections: number;
  readonly sizeBytes: number;
  readonly acceptedPerSecond: number;
  readonly ackLatencyMs: Percentiles;
  readonly deliveredPerSecond: number;
  readonly deliveryLatencyMs: Percentiles;
  readonly peakRssMiB: number;
}

export async function runMxBench(
  messages: number,
  connections: number,
  sizeBytes: number,
): Promise<MxBenchResult> {
  const root = benchRoot('mx');
  const pkiDir = path.join(root, 'pki');
  const p = (f: string) => path.join(pkiDir, f);
  const config = benchConfig(root, {
    smtp: { mx: { host: '127.0.0.1', port: 0 }, submission: { enabled: false }, maxRecipients: 10 },
  });
  const peak = new MemoryPeak().start(100);
  const gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) });
  try {
    const bal = `bench.${randomUUID().slice(0, 8)}@op.mssante.test`;
    await gw.registry.create(
      { address: bal, type: 'PER', owner: '810000000001' },
      { kind: 'system', id: 'bench' },
    );
    const deliveryLatencies: number[] = [];
    let lastDeliveredAt = 0;
    const allDelivered = new Promise<void>((resolve) => {
      gw.delivery.on('settled', (env: SpoolEnvelope) => {
        const now = Date.now();
        lastDeliveredAt = now;
        deliveryLatencies.push(now - Date.parse(env.receivedAt));
        if (deliveryLatencies.length === messages) resolve();
      });
    });
    // One single-connection transport per worker, each sending in turn: latency is then the SMTP
    // transaction itself, not time spent queued in the client.
    const tls = {
      key: readFileSync(p('peer-trusted.key')),
      cert: readFileSync(p('peer-trusted.chain.pem')),
      ca: readFileSync(p('ca/root.crt')),
      servername: 'localhost',
    };
    const transports = Array.from({ length: connections }, () =>
      nodemailer.createTransport({
        pool: true,
        maxConnections: 1,
        maxMessages: Infinity,
        host: '127.0.0.1',
        port: gw.addresses.mx!.port,
        secure: false,
        requireTLS: true,
        name: 'mx.peer.mssante.test',
        tls,
      }),
    );
    const body = 'Compte rendu de biologie.\r\n'.repeat(Math.max(1, Math.floor(sizeBytes / 27)));
    const ackLatencies: number[] = [];
    let next = 0;
    const started = Date.now();
    await Promise.all(
      transports.map(async (transport) => {
        for (let i = next++; i < messages; i = next++) {
          const t0 = performance.now();
          await transport.sendMail({
            envelope: { from: 'labo@peer.mssante.test', to: [bal] },
            from: 'labo@peer.mssante.test',
            to: bal,
            subject: `bench ${i}`,
            headers: { 'X-MSS-NIL': 'BENCH 1.0' },
            text: body,
          });
          ackLatencies.push(Math.round(performance.now() - t0));
        }
      }),
    );
    const acceptedSeconds = (Date.now() - started) / 1000;
    transports.forEach((t) => t.close());
    await allDelivered;
    const deliveredSeconds = (lastDeliveredAt - started) / 1000;
    return {
      messages,
      connections,
      sizeBytes,
      acceptedPerSecond: messages / acceptedSeconds,
      ackLatencyMs: percentiles(ackLatencies),
      deliveredPerSecond: messages / deliveredSeconds,
      deliveryLatencyMs: percentiles(deliveryLatencies),
      peakRssMiB: peak.rssMiB,
    };
  } finally {
    peak.stop();
    await gw.stop();
    rmSync(root, { recursive: true, force: true });
  }
}
