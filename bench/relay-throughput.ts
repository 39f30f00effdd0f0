import { execFile, spawn } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
import { type AddressInfo, connect } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { Gateway } from '../src/app/index.js';
import type { SpoolEnvelope } from '../src/delivery/index.js';
import { createLogger } from '../src/observability/index.js';
import { ensureDevPki } from '../src/pki/index.js';
import { benchConfig, benchRoot } from './bench-gateway.js';
import { type Percentiles, percentiles } from './stats.js';

/**
 * Outbound relay throughput on loopback (issue #4): N messages spooled for another operator are
 * relayed over mutual TLS to a local peer MX (smtp-server with the dev PKI's peer certificate, in
 * this process). Prints messages per second and spool→peer latency percentiles; then, as the
 * reference ceiling on the same machine, Postfix's smtp-source → smtp-sink (plain SMTP, no TLS, no
 * fsync) with the same count, size and connections, and the ratio.
 */
export interface RelayBenchResult {
  readonly messages: number;
  readonly sizeBytes: number;
  readonly connections: number;
  readonly relayedPerSecond: number;
  readonly latencyMs: Percentiles;
  readonly reference?: { readonly perSecond: number; readonly seconds: number };
}

async function startPeer(
  pkiDir: string,
): Promise<{ port: number; received: () => number; stop: () => Promise<void> }> {
  let received = 0;
  const f = (name: string) => readFileSync(path.join(pkiDir, name), 'utf8');
  const server = new SMTPServer({
    secure: false,
    key: f('peer-trusted.key'),
    cert: f('peer-trusted.chain.pem'),
    authOptional: true,
    disabledCommands: ['AUTH'],
    logger: false,
    size: 50 * 1024 * 1024,
    onData(stream, _session, cb) {
      stream.on('data', () => undefined);
      stream.on('end', () => {
        received += 1;
        cb(null, 'Ok');
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.server.address() as AddressInfo).port,
    received: () => received,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Resolves once something accepts connections on the port (smtp-sink has no readiness signal). */
async function listening(port: number): Promise<void> {
  for (let i = 0; i < 100; i += 1) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smtp-sink did not listen on ${port}`);
}

/** Postfix's smtp-source → smtp-sink, when installed (Debian package postfix). */
async function reference(messages: number, sizeBytes: number, connections: number) {
  const run = promisify(execFile);
  const which = await run('sh', ['-c', 'command -v smtp-source && command -v smtp-sink']).catch(
    () => undefined,
  );
  if (!which) return undefined;
  const port = 20000 + Math.floor(Math.random() * 20000);
  // smtp-sink refuses to run as root without a user to switch to.
  const user = process.getuid?.() === 0 ? ['-u', 'nobody'] : [];
  const sink = spawn('smtp-sink', [...user, `127.0.0.1:${port}`, '256'], { stdio: 'ignore' });
  try {
    await listening(port);
    const started = performance.now();
    await run('smtp-source', [
      '-l',
      String(sizeBytes),
      '-m',
      String(messages),
      '-s',
      String(connections),
      '-f',
      'bench@op.mssante.test',
      '-t',
      'dest@peer.mssante.test',
      `127.0.0.1:${port}`,
    ]);
    const seconds = (performance.now() - started) / 1000;
    return { perSecond: messages / seconds, seconds };
  } finally {
    sink.kill('SIGTERM');
  }
}

export async function runRelayBench(
  messages: number,
  connections: number,
  sizeBytes: number,
): Promise<RelayBenchResult> {
  const root = benchRoot('relay');
  const pkiDir = path.join(root, 'pki');
  await ensureDevPki(pkiDir);
  const peer = await startPeer(pkiDir);
  const config = benchConfig(root, {
    smtp: { mx: { enabled: false }, submission: { enabled: false } },
    relay: {
      routes: { 'peer.mssante.test': [{ host: '127.0.0.1', port: peer.port }] },
      maxConnectionsPerDestination: connections,
    },
  });
  const gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) });
  try {
    const body = Buffer.alloc(sizeBytes, 'x\r\n'.repeat(40) + 'y'.repeat(77) + '\r\n');
    const latencies: number[] = [];
    const done = new Promise<void>((resolve) => {
      gw.delivery.on('settled', (env: SpoolEnvelope) => {
        latencies.push(Date.now() - Date.parse(env.receivedAt));
        if (latencies.length === messages) resolve();
      });
    });
    const started = performance.now();
    for (let n = 0; n < messages; n += 1) {
      const raw = Buffer.concat([
        Buffer.from(`From: bench@op.mssante.test\r\nTo: dest@peer.mssante.test\r\nSubject: ${n}\r\n\r\n`),
        body,
      ]);
      await gw.delivery.inject({
        from: 'bench@op.mssante.test',
        to: 'dest@peer.mssante.test',
        route: 'relay',
        raw,
      });
    }
    await done;
    const seconds = (performance.now() - started) / 1000;
    return {
      messages,
      sizeBytes,
      connections,
      relayedPerSecond: messages / seconds,
      latencyMs: percentiles(latencies),
      ...(await reference(messages, sizeBytes, connections).then((r) => (r ? { reference: r } : {}))),
    };
  } finally {
    await gw.stop();
    await peer.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export function formatRelayBench(r: RelayBenchResult): string {
  const lines = [
    `relay: ${r.messages} messages of ${Math.round(r.sizeBytes / 1024)} KiB to a local peer, up to ${r.connections} TLS connections`,
    `  relayed ${r.relayedPerSecond.toFixed(1)} msg/s; spool→peer latency p50 ${r.latencyMs.p50} ms, p95 ${r.latencyMs.p95} ms, p99 ${r.latencyMs.p99} ms`,
  ];
  if (r.reference)
    lines.push(
      `  reference smtp-source → smtp-sink (plain SMTP, no fsync): ${r.reference.perSecond.toFixed(1)} msg/s`,
      `  ratio relay/reference ${(r.relayedPerSecond / r.reference.perSecond).toFixed(3)}`,
    );
  else lines.push('  reference: smtp-source/smtp-sink not installed (apt-get install postfix)');
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runRelayBench(
    Number(process.env.BENCH_MESSAGES ?? 500),
    Number(process.env.BENCH_CONNECTIONS ?? 4),
    8 * 1024,
  );
  console.log(formatRelayBench(r));
}
