import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, chownSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Gateway } from '../src/app/index.js';
import { mintDevToken } from '../src/auth/index.js';
import { createLogger } from '../src/observability/index.js';
import { ensureDevPki } from '../src/pki/index.js';
import { deliverLmtp, dovecotPaths, ssha512 } from '../src/store/index.js';
import { waitFor } from '../src/shared/index.js';
import { benchConfig, benchRoot } from './bench-gateway.js';
import { againstMinimum, againstTarget, loadAverage, median } from './stats.js';

/**
 * Issue #16 item 1: what an IMAP login through the gateway costs against the same login on Dovecot
 * itself. One round is what a mail client does to look at its inbox: TCP connect, TLS handshake,
 * greeting, AUTHENTICATE, SELECT INBOX, LOGOUT.
 *
 * - Through the gateway: the whole gateway (`Gateway.start`, embedded Redis and Dovecot) on its
 *   implicit-TLS port, XOAUTH2 with a token of the development issuer.
 * - Directly: a second Dovecot this benchmark sets up, the same version and mail storage, with an
 *   implicit-TLS listener (the gateway's certificate) and its own passdb (passwd-file, SSHA512), and
 *   AUTHENTICATE PLAIN with the mailbox's password.
 *
 * The servers run in this process (so that `--cpu-prof` profiles the gateway) and the clients in a
 * child process, so that neither competes with the other's event loop. The client is a raw-socket
 * transcript (no client library's extra commands), with a timestamp at every step; it keeps the
 * last TLS session of each server and offers it, as mail clients do. Batches alternate between
 * the two sides, in both orders, at 1 and at 10 concurrent clients (each its own mailbox); the
 * figures are medians of the per-batch ratios.
 */

/** Issue #16 item 1: gateway round time ≤ 1.3× direct, login rate ≥ 0.8× direct. */
export const TIME_RATIO_TARGET = 1.3;
export const RATE_RATIO_TARGET = 0.8;

const STEPS = ['tcp', 'tls', 'greeting', 'auth', 'select', 'logout'] as const;
type Step = (typeof STEPS)[number];

/** One round as the client saw it: milliseconds spent in each step, and whether TLS resumed. */
interface RoundSample {
  readonly steps: Record<Step, number>;
  readonly totalMs: number;
  readonly resumed: boolean;
}

interface Target {
  readonly port: number;
  /** AUTHENTICATE mechanism and initial response, per client (one mailbox each). */
  readonly mechanism: 'XOAUTH2' | 'PLAIN';
  readonly initialResponses: readonly string[];
  /** Offer the last TLS session of this server again (mail clients do). */
  readonly resumeTls: boolean;
}

interface BatchRequest {
  readonly id: number;
  readonly side: Side;
  readonly target: Target;
  readonly concurrency: number;
  readonly roundsPerClient: number;
}

interface BatchResult {
  readonly id: number;
  readonly samples: readonly RoundSample[];
  readonly wallMs: number;
  readonly failures: readonly string[];
}

type Side = 'gateway' | 'direct';

export interface SideFigures {
  /** Median round, ms, and the median of each step. */
  readonly roundMs: number;
  readonly stepsMs: Record<Step, number>;
  /** Completed rounds per second over all batches. */
  readonly loginsPerSecond: number;
  /** Share of the TLS handshakes that resumed a session. */
  readonly resumedShare: number;
}

export interface ConcurrencyFigures {
  readonly concurrency: number;
  readonly rounds: number;
  readonly gateway: SideFigures;
  readonly direct: SideFigures;
  /** Medians over the batch pairs: gateway median round / direct's, gateway rate / direct's. */
  readonly timeRatio: number;
  readonly rateRatio: number;
}

export interface ImapLoginBenchResult {
  readonly batches: number;
  readonly roundsPerClient: number;
  readonly byConcurrency: readonly ConcurrencyFigures[];
  readonly loadBefore: string;
  readonly loadAfter: string;
  readonly resumeTls: boolean;
}

export interface ImapLoginBenchOptions {
  /** Batch pairs per concurrency (each pair: one gateway batch and one direct batch). Default 6. */
  readonly batches?: number;
  /** Rounds each client makes in a batch. Default 10. */
  readonly roundsPerClient?: number;
  readonly concurrencies?: readonly number[];
  /** Clients offer their last TLS session again, as mail clients do (default); false: full handshakes. */
  readonly resumeTls?: boolean;
}

// ---------------------------------------------------------------------------------------------
// The client side (child process)

/** Reads CRLF lines off a TLS socket. */
class Lines {
  #buf = '';
  #waiting: ((line: string | undefined) => void) | undefined;
  #ended = false;
  readonly #queue: string[] = [];

  constructor(socket: tls.TLSSocket) {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buf += chunk;
      for (let eol = this.#buf.indexOf('\r\n'); eol >= 0; eol = this.#buf.indexOf('\r\n')) {
        this.#queue.push(this.#buf.slice(0, eol));
        this.#buf = this.#buf.slice(eol + 2);
      }
      this.#wake();
    });
    const end = () => {
      this.#ended = true;
      this.#wake();
    };
    socket.on('end', end);
    socket.on('close', end);
  }

  next(): Promise<string | undefined> {
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.#wake();
    });
  }

  #wake(): void {
    const waiting = this.#waiting;
    if (!waiting) return;
    if (this.#queue.length > 0) {
      this.#waiting = undefined;
      waiting(this.#queue.shift());
    } else if (this.#ended) {
      this.#waiting = undefined;
      waiting(undefined);
    }
  }
}

async function untilTagged(lines: Lines, tag: string): Promise<string> {
  for (;;) {
    const line = await lines.next();
    if (line === undefined) throw new Error(`connection closed before ${tag} completed`);
    if (line.startsWith(`${tag} `)) {
      if (!line.startsWith(`${tag} OK`)) throw new Error(`${tag}: ${line.slice(0, 120)}`);
      return line;
    }
  }
}

/** TLS sessions offered again, per server port (as a mail client keeps them). */
const sessions = new Map<number, Buffer>();

async function oneRound(target: Target, client: number, ca: string): Promise<RoundSample> {
  const marks: number[] = [performance.now()];
  const mark = () => marks.push(performance.now());
  const raw = net.connect({ host: '127.0.0.1', port: target.port });
  raw.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    raw.once('connect', resolve);
    raw.once('error', reject);
  });
  mark();
  const session = target.resumeTls ? sessions.get(target.port) : undefined;
  const socket = tls.connect({ socket: raw, ca, servername: 'localhost', ...(session ? { session } : {}) });
  socket.on('session', (s: Buffer) => sessions.set(target.port, s));
  const lines = new Lines(socket);
  try {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    mark();
    const resumed = socket.isSessionReused();
    const greeting = await lines.next();
    if (!greeting?.startsWith('* OK')) throw new Error(`greeting: ${greeting?.slice(0, 120)}`);
    mark();
    socket.write(`a1 AUTHENTICATE ${target.mechanism} ${target.initialResponses[client]}\r\n`);
    await untilTagged(lines, 'a1');
    mark();
    socket.write('a2 SELECT INBOX\r\n');
    await untilTagged(lines, 'a2');
    mark();
    socket.write('a3 LOGOUT\r\n');
    await untilTagged(lines, 'a3');
    mark();
    const steps = Object.fromEntries(STEPS.map((s, i) => [s, marks[i + 1]! - marks[i]!])) as Record<
      Step,
      number
    >;
    return { steps, totalMs: marks[marks.length - 1]! - marks[0]!, resumed };
  } finally {
    socket.destroy();
  }
}

async function runBatch(request: BatchRequest, ca: string): Promise<BatchResult> {
  const samples: RoundSample[] = [];
  const failures: string[] = [];
  const started = performance.now();
  await Promise.all(
    Array.from({ length: request.concurrency }, async (_, client) => {
      for (let i = 0; i < request.roundsPerClient; i++) {
        try {
          samples.push(await oneRound(request.target, client, ca));
        } catch (err) {
          failures.push(String(err));
        }
      }
    }),
  );
  return { id: request.id, samples, wallMs: performance.now() - started, failures };
}

/** `--client <ca file>`: reads batch requests (JSON lines) on stdin, answers on stdout. */
async function clientMain(caFile: string): Promise<void> {
  const ca = readFileSync(caFile, 'utf8');
  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const result = await runBatch(JSON.parse(line) as BatchRequest, ca);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  }
}

/** The client child process, one batch at a time. */
class ClientProcess {
  readonly #child: ChildProcess;
  readonly #pending = new Map<number, { resolve: (r: BatchResult) => void; reject: (e: Error) => void }>();
  #next = 0;

  constructor(caFile: string) {
    const self = fileURLToPath(import.meta.url);
    this.#child = spawn(process.execPath, ['--import', 'tsx', self, '--client', caFile], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    createInterface({ input: this.#child.stdout! }).on('line', (line) => {
      const result = JSON.parse(line) as BatchResult;
      this.#pending.get(result.id)?.resolve(result);
      this.#pending.delete(result.id);
    });
    this.#child.once('exit', (code) => {
      for (const { reject } of this.#pending.values()) reject(new Error(`client process exited (${code})`));
      this.#pending.clear();
    });
  }

  run(side: Side, target: Target, concurrency: number, roundsPerClient: number): Promise<BatchResult> {
    const id = this.#next++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      const request: BatchRequest = { id, side, target, concurrency, roundsPerClient };
      this.#child.stdin!.write(`${JSON.stringify(request)}\n`);
    });
  }

  stop(): void {
    this.#child.stdin!.end();
    this.#child.kill();
  }
}

// ---------------------------------------------------------------------------------------------
// The servers (this process)

interface DirectDovecot {
  readonly tlsPort: number;
  readonly lmtpSocket: string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function greets(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, rejectUnauthorized: false });
    socket.setTimeout(2_000, () => socket.destroy());
    socket.once('data', (d: Buffer) => {
      socket.destroy();
      resolve(d.toString('latin1').startsWith('* OK'));
    });
    socket.once('error', () => resolve(false));
    socket.once('close', () => resolve(false));
  });
}

/**
 * A Dovecot of our own: the gateway's embedded configuration (same accounts, mail storage, fsync
 * policy, folders), moved to `root`, with `ssl = required`, an implicit-TLS listener on a free
 * loopback port with the gateway's certificate, no master user, and the mailboxes' passwords in its
 * regular passdb.
 */
async function startDirectDovecot(
  gatewayDataDir: string,
  root: string,
  pkiDir: string,
  users: ReadonlyArray<{ bal: string; password: string }>,
): Promise<DirectDovecot> {
  const gw = dovecotPaths(gatewayDataDir);
  const dataDir = path.join(root, 'direct');
  const p = dovecotPaths(dataDir);
  for (const dir of [dataDir, p.root, p.etcDir, p.stateDir, p.mailDir]) mkdirSync(dir, { recursive: true });
  // The same modes and owners as the gateway's Dovecot folders.
  for (const [mine, theirs] of [
    [dataDir, path.dirname(gw.root)],
    [p.root, gw.root],
    [p.etcDir, gw.etcDir],
    [p.stateDir, gw.stateDir],
    [p.mailDir, gw.mailDir],
  ] as const) {
    const st = statSync(theirs);
    chmodSync(mine, st.mode & 0o7777);
    chownSync(mine, st.uid, st.gid);
  }
  const passwdOwner = statSync(gw.masterPasswdFile);
  writeFileSync(p.masterPasswdFile, '', { mode: 0o640 });
  writeFileSync(p.noDirectLoginsFile, users.map((u) => `${u.bal}:${ssha512(u.password)}\n`).join(''), {
    mode: 0o640,
  });
  for (const file of [p.masterPasswdFile, p.noDirectLoginsFile])
    chownSync(file, passwdOwner.uid, passwdOwner.gid);
  const chain = path.join(p.etcDir, 'tls-chain.pem');
  writeFileSync(
    chain,
    readFileSync(path.join(pkiDir, 'gateway.crt'), 'utf8') +
      readFileSync(path.join(pkiDir, 'ca/org.crt'), 'utf8'),
  );
  const tlsPort = await freePort();
  const imapPort = await freePort();
  let config = readFileSync(gw.configFile, 'utf8').replaceAll(gw.root, p.root);
  const replace = (from: RegExp, to: string) => {
    if (!from.test(config))
      throw new Error(`direct Dovecot: ${from} not found in the embedded configuration`);
    config = config.replace(from, to);
  };
  replace(/^instance_name = .*$/m, `instance_name = mssgw-bench-direct-${randomBytes(4).toString('hex')}`);
  replace(
    /^ssl = no$/m,
    `ssl = required\nssl_cert = <${chain}\nssl_key = <${path.join(pkiDir, 'gateway.key')}\nssl_min_protocol = TLSv1.2`,
  );
  replace(/(inet_listener imap \{\n\s+address = 127\.0\.0\.1\n\s+port = )\d+/, `$1${imapPort}`);
  replace(
    /inet_listener imaps \{\n\s+port = 0\n/,
    `inet_listener imaps {\n    address = 127.0.0.1\n    port = ${tlsPort}\n`,
  );
  writeFileSync(p.configFile, config, { mode: 0o644 });
  const child = spawn('dovecot', ['-F', '-c', p.configFile], { stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const up = await waitFor(async () => child.exitCode !== null || (await greets(tlsPort)), 60_000, 100);
  if (!up || child.exitCode !== null) throw new Error(`direct Dovecot did not start; see ${p.logFile}`);
  return {
    tlsPort,
    lmtpSocket: p.lmtpSocket,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

function sideFigures(results: readonly BatchResult[]): SideFigures {
  const samples = results.flatMap((r) => r.samples);
  const rounds = samples.length;
  const wall = results.reduce((a, r) => a + r.wallMs, 0);
  const stepsMs = Object.fromEntries(STEPS.map((s) => [s, median(samples.map((x) => x.steps[s]))])) as Record<
    Step,
    number
  >;
  return {
    roundMs: median(samples.map((s) => s.totalMs)),
    stepsMs,
    loginsPerSecond: (rounds * 1000) / wall,
    resumedShare: rounds === 0 ? 0 : samples.filter((s) => s.resumed).length / rounds,
  };
}

const rate = (r: BatchResult) => (r.samples.length * 1000) / r.wallMs;
const medianRound = (r: BatchResult) => median(r.samples.map((s) => s.totalMs));

export async function runImapLoginBench(options: ImapLoginBenchOptions = {}): Promise<ImapLoginBenchResult> {
  const batches = options.batches ?? 6;
  const roundsPerClient = options.roundsPerClient ?? 10;
  const concurrencies = options.concurrencies ?? [1, 10];
  const resumeTls = options.resumeTls ?? true;
  const clients = Math.max(...concurrencies);
  const root = benchRoot('imap');
  const pkiDir = path.join(root, 'pki');
  await ensureDevPki(pkiDir);
  const config = benchConfig(root, {
    smtp: { mx: { enabled: false }, submission: { enabled: false } },
    imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
  });
  const loadBefore = loadAverage();
  const gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) });
  let direct: DirectDovecot | undefined;
  let client: ClientProcess | undefined;
  try {
    const owner = '810000000001';
    const tag = randomUUID().slice(0, 8);
    const users = Array.from({ length: clients }, (_, i) => ({
      bal: `bench.${tag}.${i}@${config.domains[0]}`,
      password: randomBytes(18).toString('base64url'),
    }));
    for (const { bal } of users)
      await gw.registry.create({ address: bal, type: 'PER', owner }, { kind: 'system', id: 'bench' });
    direct = await startDirectDovecot(config.dataDir, root, pkiDir, users);
    // The same message in every inbox, on both sides.
    for (const { bal } of users) {
      const message = Buffer.from(
        `From: a@peer.mssante.test\r\nTo: ${bal}\r\nSubject: bench\r\n\r\n${'x'.repeat(4000)}\r\n`,
      );
      await deliverLmtp(gw.backends.store.lmtp, { from: 'a@peer.mssante.test', to: [bal] }, message);
      await deliverLmtp({ path: direct.lmtpSocket }, { from: 'a@peer.mssante.test', to: [bal] }, message);
    }
    const token = await mintDevToken({ pkiDir, subject: owner, ttlSeconds: 3600 });
    const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
    const targets: Record<Side, Target> = {
      gateway: {
        port: gw.addresses.imapTls!.port,
        mechanism: 'XOAUTH2',
        resumeTls,
        initialResponses: users.map((u) => b64(`user=${u.bal}\x01auth=Bearer ${token}\x01\x01`)),
      },
      direct: {
        port: direct.tlsPort,
        mechanism: 'PLAIN',
        resumeTls,
        initialResponses: users.map((u) => b64(`\0${u.bal}\0${u.password}`)),
      },
    };
    client = new ClientProcess(path.join(pkiDir, 'ca/root.crt'));
    // Warm-up: JIT on both sides, each mailbox's first login, a TLS session to offer.
    for (const side of ['gateway', 'direct'] as const) await client.run(side, targets[side], clients, 2);
    const byConcurrency: ConcurrencyFigures[] = [];
    for (const concurrency of concurrencies) {
      const results: Record<Side, BatchResult[]> = { gateway: [], direct: [] };
      const timeRatios: number[] = [];
      const rateRatios: number[] = [];
      for (let b = 0; b < batches; b++) {
        const order: Side[] = b % 2 === 0 ? ['gateway', 'direct'] : ['direct', 'gateway'];
        const pair = {} as Record<Side, BatchResult>;
        for (const side of order) {
          const r = await client.run(side, targets[side], concurrency, roundsPerClient);
          if (r.failures.length > 0)
            throw new Error(`${side}: ${r.failures.length} rounds failed: ${r.failures[0]}`);
          pair[side] = r;
          results[side].push(r);
        }
        timeRatios.push(medianRound(pair.gateway) / medianRound(pair.direct));
        rateRatios.push(rate(pair.gateway) / rate(pair.direct));
      }
      byConcurrency.push({
        concurrency,
        rounds: batches * concurrency * roundsPerClient,
        gateway: sideFigures(results.gateway),
        direct: sideFigures(results.direct),
        timeRatio: median(timeRatios),
        rateRatio: median(rateRatios),
      });
    }
    return { batches, roundsPerClient, byConcurrency, loadBefore, loadAfter: loadAverage(), resumeTls };
  } finally {
    client?.stop();
    await direct?.stop();
    await gw.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export function formatImapLoginBench(r: ImapLoginBenchResult): string {
  const ms = (n: number) => n.toFixed(2);
  const side = (name: string, f: SideFigures) =>
    `    ${name} round p50 ${ms(f.roundMs)} ms, ${f.loginsPerSecond.toFixed(1)} logins/s, ` +
    `TLS resumed ${Math.round(f.resumedShare * 100)}%; steps p50 ` +
    STEPS.map((s) => `${s} ${ms(f.stepsMs[s])}`).join(', ');
  const lines = [
    `imap login: TCP + TLS + AUTHENTICATE + SELECT INBOX + LOGOUT, raw client in a child process; ` +
      `${r.batches} interleaved batch pairs of ${r.roundsPerClient} rounds per client; ` +
      `TLS sessions ${r.resumeTls ? 'offered again' : 'never offered again'} (load ${r.loadBefore} → ${r.loadAfter})`,
  ];
  for (const c of r.byConcurrency) {
    lines.push(
      `  ${c.concurrency} concurrent client${c.concurrency > 1 ? 's' : ''} (${c.rounds} rounds each side)`,
      side('gateway (XOAUTH2)     ', c.gateway),
      side('direct Dovecot (PLAIN)', c.direct),
      `    time ratio gateway/direct ${againstTarget(c.timeRatio, TIME_RATIO_TARGET, '×', 2)}`,
      `    login rate ratio gateway/direct ${againstMinimum(c.rateRatio, RATE_RATIO_TARGET, '×', 2)}`,
    );
  }
  return lines.join('\n');
}

if (process.argv[2] === '--client' && process.argv[3]) {
  await clientMain(process.argv[3]);
} else if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // `node --import tsx bench/imap-login.ts [batches] [rounds per client]`
  const batches = Number(process.argv[2] ?? process.env.BENCH_IMAP_BATCHES ?? 6);
  const roundsPerClient = Number(process.argv[3] ?? process.env.BENCH_IMAP_ROUNDS ?? 10);
  const resumeTls = process.env.BENCH_IMAP_TLS !== 'full';
  console.log(formatImapLoginBench(await runImapLoginBench({ batches, roundsPerClient, resumeTls })));
}
