import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { inject, type TestContext } from 'vitest';
import { findEmbeddedRedisProcesses } from '../../src/redis/index.js';
import { terminateProcesses } from '../../src/shared/index.js';
import { findEmbeddedDovecotProcesses } from '../../src/store/index.js';
import { deepMerge, testSettings } from './gateway.js';
import { nodeEntry } from './node-entry.js';

/**
 * The gateway as operators run it: `src/main.ts` in its own process (its build when current, see
 * nodeEntry), configured by a JSON file (MSSGW_CONFIG) with the repository's `config/` folder out
 * of the way, logging JSON lines on stderr. Tests can kill it with any signal, including SIGKILL, and start it again on the same data.
 */

const repoRoot = path.resolve(import.meta.dirname, '../..');

export interface ChildGatewayOptions {
  /** Settings written to the MSSGW_CONFIG file (same shape as `config/default.yaml`). */
  readonly config: Record<string, unknown>;
  /** Extra environment variables (e.g. `MSSGW_*` overrides). */
  readonly env?: Record<string, string>;
  /** Label in failure output; default `gateway`. */
  readonly name?: string;
  /** Its own process group (pid = group id), so a test can signal the whole group as a shell would. */
  readonly detached?: boolean;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface ChildGateway {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly name: string;
  /** The MSSGW_CONFIG file written for this process. */
  readonly configFile: string;
  /** Every stderr line so far (pino JSON lines, or plain text for a config error). */
  readonly stderrLines: readonly string[];
  /** The stderr lines that are JSON objects (log events). */
  events(): Array<Record<string, unknown>>;
  /** The last `n` stderr lines, for assertion messages. */
  tail(n?: number): string;
  kill(signal?: NodeJS.Signals): void;
  /** Resolves once the process has exited; rejects after the deadline (the process is left running). */
  waitExit(timeoutMs?: number): Promise<ChildExit>;
  /** Resolves with the first log event satisfying `predicate`, already seen or to come. */
  waitForEvent(
    predicate: (event: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
}

export interface ReadyChildGateway extends ChildGateway {
  readonly ports: {
    readonly mx: number;
    readonly submission: number;
    readonly metrics: number;
    readonly admin: number;
  };
  /** The `gateway.ready` log event. */
  readonly ready: Record<string, unknown>;
}

interface Tracked {
  readonly gateway: ChildGateway;
  readonly dataDir: string | undefined;
  readonly embedded: boolean;
}

/** Every process started by this module and not yet reaped by `stopChildGateways`. */
const launched = new Set<Tracked>();

/** Environment of the parent without its own MSSGW_* settings, which would leak into the child. */
function baseEnv(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(process.env).filter(
      (entry): entry is [string, string] => entry[1] !== undefined && !entry[0].startsWith('MSSGW_'),
    ),
  );
}

function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function withDeadline<T>(promise: Promise<T>, timeoutMs: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what())), timeoutMs);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Starts `src/main.ts` in a child process with the given configuration. Does not wait for
 * readiness: use `startChildGateway` for that, or `waitExit` for a process expected to refuse.
 */
export function launchChildGateway(options: ChildGatewayOptions): ChildGateway {
  const name = options.name ?? 'gateway';
  const configFile = path.join(inject('scratchDir'), `child-config-${randomUUID().slice(0, 8)}.json`);
  writeFileSync(configFile, JSON.stringify(options.config, null, 2), { mode: 0o600 });
  const child = spawn(process.execPath, nodeEntry('src/main.ts'), {
    cwd: repoRoot,
    env: {
      ...baseEnv(),
      MSSGW_CONFIG_DIR: path.join(repoRoot, 'nonexistent-config-dir'),
      MSSGW_CONFIG: configFile,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  const pid = child.pid;

  const stderrLines: string[] = [];
  const events: Array<Record<string, unknown>> = [];
  const listeners = new Set<(event: Record<string, unknown>) => void>();
  const exit = new Promise<ChildExit>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  // Nothing should go to stdout; keep it with stderr so that nothing is lost.
  for (const stream of [child.stderr, child.stdout]) {
    if (!stream) continue;
    createInterface({ input: stream }).on('line', (line) => {
      stderrLines.push(line);
      const event = parseJsonLine(line);
      if (!event) return;
      events.push(event);
      for (const l of listeners) l(event);
    });
  }

  const tail = (n = 40) => stderrLines.slice(-n).join('\n');
  const gateway: ChildGateway = {
    child,
    pid,
    name,
    configFile,
    stderrLines,
    events: () => [...events],
    tail,
    kill: (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    },
    waitExit: (timeoutMs = 60_000) =>
      withDeadline(exit, timeoutMs, () => `${name} (pid ${pid}) still running after ${timeoutMs} ms`),
    waitForEvent: (predicate, timeoutMs = 90_000) => {
      const seen = events.find(predicate);
      if (seen) return Promise.resolve(seen);
      let listener: ((event: Record<string, unknown>) => void) | undefined;
      const found = new Promise<Record<string, unknown>>((resolve, reject) => {
        listener = (event) => {
          if (predicate(event)) resolve(event);
        };
        listeners.add(listener);
        void exit.then(({ code, signal }) =>
          reject(new Error(`${name} exited (code ${code}, signal ${signal}) first:\n${tail()}`)),
        );
      });
      return withDeadline(
        found,
        timeoutMs,
        () => `${name}: awaited log event not seen within ${timeoutMs} ms:\n${tail()}`,
      ).finally(() => {
        if (listener) listeners.delete(listener);
      });
    },
  };
  const config = options.config;
  const redis = config.redis as { url?: unknown } | undefined;
  launched.add({
    gateway,
    dataDir: typeof config.dataDir === 'string' ? config.dataDir : undefined,
    embedded: redis?.url === undefined,
  });
  return gateway;
}

/**
 * Settings for a child gateway on the run's shared Redis (own key prefix) and Dovecot, with the run's
 * development PKI, every listener on an ephemeral loopback port and fast retries: the shape of
 * `testConfig()` in gateway.ts, as the JSON an operator would write.
 */
export function externalBackendsConfig(options: {
  readonly dataDir: string;
  readonly prefix: string;
  readonly delivery?: Record<string, unknown>;
  /** More settings merged over these. */
  readonly overrides?: Record<string, unknown>;
}): Record<string, unknown> {
  return testSettings({
    dataDir: options.dataDir,
    prefix: options.prefix,
    overrides: deepMerge(
      { delivery: options.delivery ?? {}, log: { level: 'info' } },
      options.overrides ?? {},
    ),
  });
}

function portOf(listening: Record<string, unknown>, key: string): number {
  const value = listening[key];
  const port = typeof value === 'string' ? Number(value.slice(value.lastIndexOf(':') + 1)) : NaN;
  if (!Number.isInteger(port) || port <= 0) throw new Error(`gateway.ready lists no ${key} port`);
  return port;
}

/**
 * Starts the gateway and waits for its `gateway.ready` event (every listener bound, spool
 * recovered). On failure the process is killed and the error carries its last log lines.
 */
export async function startChildGateway(
  options: ChildGatewayOptions & { readonly readyTimeoutMs?: number },
): Promise<ReadyChildGateway> {
  const gateway = launchChildGateway(options);
  let ready: Record<string, unknown>;
  try {
    ready = await gateway.waitForEvent((e) => e.event === 'gateway.ready', options.readyTimeoutMs ?? 150_000);
  } catch (err) {
    gateway.kill('SIGKILL');
    throw err;
  }
  const listening = (ready.listening ?? {}) as Record<string, unknown>;
  return {
    ...gateway,
    ready,
    ports: {
      mx: portOf(listening, 'mx'),
      submission: portOf(listening, 'submission'),
      metrics: portOf(listening, 'metrics'),
      admin: portOf(listening, 'admin'),
    },
  };
}

/** Redis and Dovecot processes still running for the data directory of an embedded gateway. */
export async function embeddedProcessesOf(dataDir: string): Promise<number[]> {
  return [...(await findEmbeddedRedisProcesses(dataDir)), ...(await findEmbeddedDovecotProcesses(dataDir))];
}

/**
 * Prints the last log lines of every gateway process still tracked when the test failed: for an
 * `afterEach` of a file whose gateways live across its tests (stopped by `stopChildGateways` in
 * `afterAll`).
 */
export function reportChildGateways(context: TestContext): void {
  if (context.task.result?.state !== 'fail') return;
  for (const { gateway } of launched)
    console.error(`--- ${gateway.name} (pid ${gateway.pid}) output ---\n${gateway.tail(80)}`);
}

/**
 * Stops every gateway process still running (SIGTERM, then SIGKILL after a grace period) and the
 * embedded Redis and Dovecot a killed gateway leaves behind. Call from `afterEach`/`afterAll` with the
 * test context: when the test failed, the processes' last log lines are printed.
 */
export async function stopChildGateways(context?: TestContext): Promise<void> {
  const failed = context?.task.result?.state === 'fail';
  const embeddedDirs = new Set<string>();
  for (const tracked of [...launched]) {
    const { gateway } = tracked;
    if (failed) console.error(`--- ${gateway.name} (pid ${gateway.pid}) output ---\n${gateway.tail(80)}`);
    gateway.kill('SIGTERM');
    try {
      await gateway.waitExit(30_000);
    } catch {
      gateway.kill('SIGKILL');
      await gateway.waitExit(15_000).catch(() => undefined);
    }
    if (tracked.embedded && tracked.dataDir) embeddedDirs.add(tracked.dataDir);
    launched.delete(tracked);
  }
  for (const dir of embeddedDirs) await terminateProcesses(await embeddedProcessesOf(dir), 15_000);
}
