import { spawn } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { devPkiSettings } from '../src/pki/index.js';
import { benchRoot } from './bench-gateway.js';
import { againstTarget, loadAverage, median, processTreeCpuMs } from './stats.js';

/**
 * Issue #16 items 2 and 3: how long a person waits for `npm start` to be ready, and for each `mssgw`
 * command to answer, run as they run them (npm, the prestart scripts, `node bin/mssgw.js`), in this
 * working tree with its current dist/ (built first, as the install's `prepare` does).
 *
 * Each round takes a scratch folder (benchRoot) for the data directory and the development PKI, so
 * the first start creates both (RSA keys, Redis and Dovecot files) and the second finds them. The
 * configuration is `config/default.yaml` with a file in MSSGW_CONFIG on top: every listener on a
 * free port, so that a gateway already running on this machine is not disturbed.
 *
 * Wall time is what a person waits and is noisy on a shared machine; CPU (user + system) is that of
 * the command and everything it started, from the kernel's accounting: /proc for the tree under
 * `npm start` when it is ready, bash's `time` (getrusage of the reaped children) for a command.
 */

const ROOT = path.resolve(import.meta.dirname, '..');
export const START_TARGET_S = 5;
export const CLI_TARGET_S = 0.3;

/** One run of a command: wall and CPU milliseconds, and its exit code. */
export interface CommandRun {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly code: number | null;
}

export interface CommandFigure {
  readonly label: string;
  readonly expectedCode: number;
  readonly runs: readonly CommandRun[];
}

export interface StartFigure {
  readonly kind: 'first' | 'second';
  /** From spawning `npm start` to its `gateway.ready` line. */
  readonly readyMs: number;
  /** CPU of npm and everything under it (prestart scripts, the gateway, Redis, Dovecot) until ready. */
  readonly cpuMs: number;
  /** From spawning `npm start` to the start of the gateway's node process: npm and the prestart scripts. */
  readonly beforeNodeMs: number;
  /** The gateway's own account (gateway.ready startMs): modules, config, each step of Gateway.start, ready. */
  readonly steps: Readonly<Record<string, number>>;
}

export interface StartupBenchResult {
  readonly loadBefore: string;
  readonly loadAfter: string;
  /** `node -e 0`: the floor under every figure below. */
  readonly nodeAlone: CommandFigure;
  readonly prestart: readonly CommandFigure[];
  readonly starts: readonly StartFigure[];
  readonly cli: readonly CommandFigure[];
}

/** Runs `argv` under bash's `time`: wall as bash sees it (no bash start-up), CPU of the command and its children. */
function timed(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<CommandRun & { stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'bash',
      ['-c', 'TIMEFORMAT="%3R %3U %3S"; time "$@" >/dev/null 2>&3', 'bash', ...argv],
      {
        cwd: ROOT,
        env,
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
      },
    );
    let times = '';
    let stderr = '';
    child.stdio[2]?.on('data', (b: Buffer) => (times += b.toString()));
    child.stdio[3]?.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const m = /(\d+\.\d+) (\d+\.\d+) (\d+\.\d+)\s*$/.exec(times);
      if (!m) return reject(new Error(`no timing from bash for ${argv.join(' ')}: ${times}`));
      const [wall, user, sys] = [m[1], m[2], m[3]].map((v) => Number(v) * 1000);
      resolve({ wallMs: wall!, cpuMs: user! + sys!, code, stderr });
    });
  });
}

async function figure(
  label: string,
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
  runs: number,
  expectedCode = 0,
): Promise<CommandFigure> {
  const out: CommandRun[] = [];
  for (let i = 0; i < runs; i++) {
    const { stderr, ...run } = await timed(argv, env);
    if (run.code !== expectedCode)
      throw new Error(`${label}: exit ${run.code}, expected ${expectedCode}\n${stderr.slice(-2000)}`);
    out.push(run);
  }
  return { label, expectedCode, runs: out };
}

/** A port free now (for the listeners that must know theirs before they listen: issuer and stand-in URLs). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
    server.on('error', reject);
  });
}

/** The environment of a person in this shell, without their MSSGW_* settings, plus `extra`. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('MSSGW_')));
  return { ...env, ...extra };
}

interface RunningStart {
  readonly figure: StartFigure;
  readonly ready: Record<string, unknown>;
  /** SIGTERM to the gateway (as Ctrl-C would), then waits for npm to end. */
  stop(): Promise<void>;
}

/** `npm start` until its `gateway.ready` line. */
async function npmStart(kind: StartFigure['kind'], env: NodeJS.ProcessEnv): Promise<RunningStart> {
  const began = Date.now();
  const t0 = performance.now();
  // Its own process group, so that a failure can stop all of it.
  const npm = spawn('npm', ['start'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const pid = npm.pid;
  if (pid === undefined) throw new Error('npm start: spawn failed');
  const tail: string[] = [];
  const exited = new Promise<number | null>((resolve) => npm.on('exit', (code) => resolve(code)));
  const ready = await new Promise<Record<string, unknown>>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`npm start: not ready in 300 s\n${tail.join('\n')}`)),
      300_000,
    );
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`npm start ended (exit ${code}) before ready\n${tail.join('\n')}`));
    });
    for (const stream of [npm.stdout, npm.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 40) tail.shift();
        if (!line.includes('"gateway.ready"')) return;
        clearTimeout(timer);
        resolve(JSON.parse(line) as Record<string, unknown>);
      });
    }
  }).catch((err: unknown) => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
    throw err;
  });
  const readyMs = performance.now() - t0;
  const cpuMs = processTreeCpuMs(pid);
  const steps = (ready.startMs ?? {}) as Record<string, number>;
  // The pino time of the line, less the gateway's own time since its process started.
  const beforeNodeMs = Date.parse(ready.time as string) - (steps.ready ?? 0) - began;
  return {
    figure: { kind, readyMs, cpuMs, beforeNodeMs, steps },
    ready,
    stop: async () => {
      process.kill(ready.pid as number, 'SIGTERM');
      const deadline = setTimeout(() => process.kill(-pid, 'SIGKILL'), 120_000);
      await exited;
      clearTimeout(deadline);
    },
  };
}

export async function runStartupBench(options: {
  rounds: number;
  cliRuns: number;
  /** Also time `npx mssgw --help` once a round (npm installs the package into its cache first: slow). */
  npx: boolean;
}): Promise<StartupBenchResult> {
  const loadBefore = loadAverage();
  const base = cleanEnv({});
  // As after the install (`prepare`): dist/ current, so the prestart build is the no-op check measured below.
  const build = await timed(['node', 'scripts/build.mjs', '--if-stale'], base);
  if (build.code !== 0) throw new Error(`the build failed:\n${build.stderr}`);

  const nodeAlone = await figure('node -e 0', ['node', '-e', '0'], base, options.cliRuns);
  const prestart = [
    await figure('scripts/system-deps.mjs', ['node', 'scripts/system-deps.mjs'], base, options.cliRuns),
    await figure(
      'scripts/build.mjs --if-stale',
      ['node', 'scripts/build.mjs', '--if-stale'],
      base,
      options.cliRuns,
    ),
  ];

  const starts: StartFigure[] = [];
  const cliRuns = new Map<string, { expectedCode: number; runs: CommandRun[] }>();
  for (let round = 0; round < options.rounds; round++) {
    const root = benchRoot('startup');
    try {
      const pkiDir = path.join(root, 'certs-dev');
      const configFile = path.join(root, 'config.json');
      const any = { host: '127.0.0.1', port: 0 };
      writeFileSync(
        configFile,
        JSON.stringify({
          dataDir: path.join(root, 'var'),
          ...devPkiSettings(pkiDir),
          smtp: { mx: any, submission: { ...any, tlsPort: 0 } },
          imap: { ...any, tlsPort: 0 },
          metrics: any,
          admin: any,
          portal: { ...any, devProvider: { port: await freePort() } },
          publication: { devDirectory: { port: await freePort() } },
        }),
      );
      const env = cleanEnv({ MSSGW_CONFIG: configFile });
      const first = await npmStart('first', env);
      starts.push(first.figure);
      await first.stop();
      const second = await npmStart('second', env);
      starts.push(second.figure);
      try {
        const admin = (second.ready.listening as Record<string, string>).admin;
        const cliEnv = cleanEnv({ MSSGW_CONFIG: configFile, MSSGW_ADMIN_URL: `http://${admin}` });
        const mssgw = ['node', 'bin/mssgw.js'];
        const commands: Array<[string, string[], number]> = [
          ['mssgw --help', ['--help'], 0],
          ['mssgw bal list', ['bal', 'list'], 0],
          ['mssgw queue list', ['queue', 'list'], 0],
          ['mssgw dev-token --subject …', ['dev-token', '--subject', '810000000001'], 0],
          ['mssgw bal list --status asleep (usage error)', ['bal', 'list', '--status', 'asleep'], 2],
          ['mssgw bal show <unknown> (refused by the API)', ['bal', 'show', 'nobody@op.mssante.test'], 1],
        ];
        for (const [label, args, code] of commands) {
          const f = await figure(label, [...mssgw, ...args], cliEnv, options.cliRuns, code);
          const seen = cliRuns.get(label) ?? { expectedCode: code, runs: [] };
          seen.runs.push(...f.runs);
          cliRuns.set(label, seen);
        }
        if (options.npx) {
          // npx adds npm's own start (and its install of this package into its cache) to the command.
          const npx = await figure('npx mssgw --help', ['npx', 'mssgw', '--help'], cliEnv, 1);
          const seen = cliRuns.get(npx.label) ?? { expectedCode: 0, runs: [] };
          seen.runs.push(...npx.runs);
          cliRuns.set(npx.label, seen);
        }
      } finally {
        await second.stop();
      }
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  }
  const cli = [...cliRuns].map(([label, f]) => ({ label, ...f }));
  return { loadBefore, loadAfter: loadAverage(), nodeAlone, prestart, starts, cli };
}

const s = (ms: number) => (ms / 1000).toFixed(2);

function commandLine(f: CommandFigure, target?: number): string {
  const wall = median(f.runs.map((r) => r.wallMs));
  const cpu = median(f.runs.map((r) => r.cpuMs));
  const wallText = target === undefined ? `${s(wall)} s` : againstTarget(wall / 1000, target, 's', 2);
  const cpuText = target === undefined ? `${s(cpu)} s` : againstTarget(cpu / 1000, target, 's', 2);
  return `  ${f.label.padEnd(48)} wall ${wallText}; CPU ${cpuText}  (median of ${f.runs.length})`;
}

export function formatStartupBench(r: StartupBenchResult): string {
  const lines = [`start-up and CLI (load average ${r.loadBefore} before, ${r.loadAfter} after)`];
  lines.push(commandLine(r.nodeAlone));
  for (const f of r.prestart) lines.push(commandLine(f));
  for (const kind of ['first', 'second'] as const) {
    const runs = r.starts.filter((f) => f.kind === kind);
    if (runs.length === 0) continue;
    const ready = median(runs.map((f) => f.readyMs));
    const cpu = median(runs.map((f) => f.cpuMs));
    lines.push(
      `  npm start to ready, ${kind} start${kind === 'first' ? ' (PKI and data directory created)' : ''}: ` +
        `wall ${againstTarget(ready / 1000, START_TARGET_S, 's', 2)}; CPU ${s(cpu)} s (npm, prestart, gateway, Redis, Dovecot; median of ${runs.length})`,
    );
    const steps = new Map<string, number[]>();
    for (const f of runs) {
      steps.set('npm and prestart', [...(steps.get('npm and prestart') ?? []), f.beforeNodeMs]);
      for (const [k, v] of Object.entries(f.steps)) steps.set(k, [...(steps.get(k) ?? []), v]);
    }
    lines.push(
      `    ${[...steps].map(([k, v]) => `${k} ${s(median(v))}`).join(' · ')} (s, medians; redis, dovecot and trust run side by side inside trustAndBackends)`,
    );
  }
  lines.push(`  each command (node bin/mssgw.js …, the gateway running):`);
  for (const f of r.cli) lines.push(commandLine(f, f.label.startsWith('npx') ? undefined : CLI_TARGET_S));
  return lines.join('\n');
}
