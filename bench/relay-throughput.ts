import { execFile, fork, spawn } from 'node:child_process';
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
import { type Percentiles, loadAverage, percentiles, processTreeCpuMs } from './stats.js';

/**
 * Outbound relay throughput on loopback (issue #12): N messages committed to the spool for another
 * operator (no SMTP acceptance in the way: the relay's own cost) are relayed over mutual TLS to a
 * peer MX (smtp-server with the dev PKI's peer certificate, in a child process so that its CPU is
 * not counted). Prints messages per second, the time from spool commit to the peer's 250 and to
 * the settled state, the gateway's CPU per message (its process and its Redis, not the peer, not
 * Dovecot), and how the relay used its connections (opened, reused, pipelined, peak per
 * destination). Then, as the reference ceiling on the same machine, Postfix's smtp-source →
 * smtp-sink (plain SMTP, no TLS, no fsync) with the same count, size and connections.
 */
export interface RelayBenchResult {
  readonly messages: number;
  readonly sizeBytes: number;
  readonly connections: number;
  readonly injectors: number;
  readonly relayedPerSecond: number;
  /** Spool commit (inject returned) → the peer's 250 sent. */
  readonly commitToReplyMs: Percentiles;
  /** Spool receipt → settled (state written after the 250). */
  readonly latencyMs: Percentiles;
  readonly cpuMsPerMessage: number;
  readonly relay: {
    readonly opened: number;
    readonly transactions: number;
    readonly reused: number;
    readonly pipelined: number;
    readonly peakConnections: number;
  };
  readonly load: { readonly before: string; readonly after: string };
  readonly reference?: { readonly perSecond: number; readonly seconds: number };
}

/** What the peer child tells its parent. */
type PeerMessage =
  | { readonly kind: 'listening'; readonly port: number }
  | { readonly kind: 'replies'; readonly at: Record<string, number> };

/**
 * The peer MX, run in this file's child (`--relay-peer <pkiDir>`): answers every message 250 and
 * keeps, by Subject, the time (epoch ms, sub-millisecond) of its reply, sent back on request.
 */
async function runPeerChild(pkiDir: string): Promise<void> {
  const at: Record<string, number> = {};
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
      let subject: string | undefined;
      let head = '';
      stream.on('data', (chunk: Buffer) => {
        if (subject !== undefined || head.length > 4096) return;
        head += chunk.toString('latin1');
        subject = /\r\nSubject: (\S+)\r\n/.exec(head)?.[1];
      });
      stream.on('end', () => {
        if (subject !== undefined) at[subject] = performance.timeOrigin + performance.now();
        cb(null, 'Ok');
      });
    },
  });
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const send = (m: PeerMessage) => process.send!(m);
  send({ kind: 'listening', port: (server.server.address() as AddressInfo).port });
  process.on('message', (m: string) => {
    if (m === 'replies') send({ kind: 'replies', at });
    if (m === 'stop') server.close(() => process.exit(0));
  });
}

async function startPeer(pkiDir: string) {
  const child = fork(import.meta.filename, ['--relay-peer', pkiDir], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<PeerMessage>((resolve, reject) => {
      child.once('message', (m) => resolve(m as PeerMessage));
      child.once('exit', (code) => reject(new Error(`relay peer exited (${code})`)));
    });
  const first = await next();
  if (first.kind !== 'listening') throw new Error('relay peer did not listen');
  return {
    port: first.port,
    pid: child.pid!,
    replies: async () => {
      const answer = next();
      child.send('replies');
      const m = await answer;
      return m.kind === 'replies' ? m.at : {};
    },
    stop: () =>
      new Promise<void>((resolve) => {
        child.once('exit', () => resolve());
        child.send('stop');
      }),
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

/**
 * `messages` committed by `injectors` concurrent writers (enough to keep `connections` busy), to a
 * relay allowed `connections` per destination. A warm-up of 20 messages opens the connections
 * first; it is not measured.
 */
export async function runRelayBench(
  messages: number,
  connections: number,
  sizeBytes: number,
  injectors = Math.max(connections, 20),
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
    const committed = new Map<string, number>();
    const latencies: number[] = [];
    let settled = 0;
    let target = 0;
    let wake: () => void = () => undefined;
    gw.delivery.on('settled', (env: SpoolEnvelope) => {
      latencies.push(Date.now() - Date.parse(env.receivedAt));
      settled += 1;
      if (settled >= target) wake();
    });
    const batch = async (label: string, count: number) => {
      target = settled + count;
      const done = new Promise<void>((resolve) => (wake = resolve));
      let next = 0;
      await Promise.all(
        Array.from({ length: Math.min(injectors, count) }, async () => {
          for (let n = next++; n < count; n = next++) {
            const subject = `${label}-${n}`;
            const raw = Buffer.concat([
              Buffer.from(
                `From: bench@op.mssante.test\r\nTo: dest@peer.mssante.test\r\nSubject: ${subject}\r\n\r\n`,
              ),
              body,
            ]);
            await gw.delivery.inject({
              from: 'bench@op.mssante.test',
              to: 'dest@peer.mssante.test',
              route: 'relay',
              raw,
            });
            committed.set(subject, performance.timeOrigin + performance.now());
          }
        }),
      );
      await done;
    };
    await batch('warm', Math.min(20, messages));
    latencies.length = 0;
    const before = gw.relay.stats();
    const load = loadAverage();
    const cpu0 = processTreeCpuMs(process.pid, /^dovecot$/) - processTreeCpuMs(peer.pid);
    const started = performance.now();
    await batch('m', messages);
    const seconds = (performance.now() - started) / 1000;
    const cpu = processTreeCpuMs(process.pid, /^dovecot$/) - processTreeCpuMs(peer.pid) - cpu0;
    const after = gw.relay.stats();
    const replies = await peer.replies();
    const commitToReply = [...committed]
      .filter(([subject]) => subject.startsWith('m-') && replies[subject] !== undefined)
      .map(([subject, at]) => Math.round((replies[subject]! - at) * 10) / 10);
    return {
      messages,
      sizeBytes,
      connections,
      injectors,
      relayedPerSecond: messages / seconds,
      commitToReplyMs: percentiles(commitToReply),
      latencyMs: percentiles(latencies),
      cpuMsPerMessage: cpu / messages,
      relay: {
        opened: after.opened - before.opened,
        transactions: after.transactions - before.transactions,
        reused: after.reused - before.reused,
        pipelined: after.pipelined - before.pipelined,
        peakConnections: after.peakPerDestination.get('peer.mssante.test') ?? 0,
      },
      load: { before: load, after: loadAverage() },
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
    `relay: ${r.messages} messages of ${Math.round(r.sizeBytes / 1024)} KiB committed by ${r.injectors} writers to a local peer, up to ${r.connections} TLS connections; load ${r.load.before} → ${r.load.after}`,
    `  relayed ${r.relayedPerSecond.toFixed(1)} msg/s; CPU ${r.cpuMsPerMessage.toFixed(2)} ms/message (gateway process and its Redis)`,
    `  commit→peer 250 p50 ${r.commitToReplyMs.p50} ms, p95 ${r.commitToReplyMs.p95} ms, p99 ${r.commitToReplyMs.p99} ms; receipt→settled p50 ${r.latencyMs.p50} ms, p99 ${r.latencyMs.p99} ms`,
    `  connections: ${r.relay.opened} opened, peak ${r.relay.peakConnections} to the destination; ${r.relay.transactions} transactions, ${r.relay.reused} over a reused connection, ${r.relay.pipelined} pipelined`,
  ];
  if (r.reference)
    lines.push(
      `  reference smtp-source → smtp-sink (plain SMTP, no fsync): ${r.reference.perSecond.toFixed(1)} msg/s`,
      `  ratio relay/reference ${(r.relayedPerSecond / r.reference.perSecond).toFixed(3)}`,
    );
  else lines.push('  reference: smtp-source/smtp-sink not installed (apt-get install postfix)');
  return lines.join('\n');
}

if (process.argv[2] === '--relay-peer') {
  await runPeerChild(process.argv[3]!);
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const r = await runRelayBench(
    Number(process.env.BENCH_MESSAGES ?? 500),
    Number(process.env.BENCH_CONNECTIONS ?? 20),
    Number(process.env.BENCH_KIB ?? 8) * 1024,
  );
  console.log(formatRelayBench(r));
  process.exit(0);
}
