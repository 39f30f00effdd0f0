import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Redis } from 'ioredis';
import {
  AssumedPublication,
  DEFAULT_PAGE_SIZE,
  LifecycleKeys,
  LifecyclePlanner,
  LifecycleRunner,
  dayInZone,
  type InactivityAction,
} from '../src/lifecycle/index.js';
import { createLogger, type AuditEvent, type AuditJournal } from '../src/observability/index.js';
import { createRedisClient, startEmbeddedRedis } from '../src/redis/index.js';
import { ActivityStore, BalRegistry } from '../src/registry/index.js';
import { NOW, THRESHOLDS, seedPopulation } from './lifecycle-population.js';
import { seedRegistry } from './registry-seed.js';
import { MemoryPeak, MiB, againstTarget, loadAverage } from './stats.js';

/**
 * The planning phase of the daily run over a real registry (issue #16 item 5: a million mailboxes
 * planned from Redis in 30 s within 512 MiB). COUNT mailboxes are seeded into an embedded Redis on
 * loopback with the registry's exact layout (bench/registry-seed.ts; creating them through
 * BalRegistry would take minutes per 100,000), the population of lifecycle-population.ts: warnings
 * and unpublications to plan among mailboxes used, idle, suspended, deleted. Then, in a process of
 * its own (its memory is the run's, not the seeding's):
 * 1. LifecyclePlanner.pages alone: every mailbox decided, nothing written;
 * 2. the run's planning phase through LifecycleRunner.runOnce: run lock, plan written to Redis page
 *    by page, run state committed; the run is stopped (as a stopping gateway stops it) at the journal's
 *    `lifecycle.run.planned`, before any step, and its state read back: resumable from cursor 0.
 * The target is checked on the second, which is what the daily run does.
 */
export interface PlannerPassFigures {
  readonly seconds: number;
  /** CPU time (user + system) of the planning process during the pass. */
  readonly cpuSeconds: number;
  /** CPU time of the Redis server during the pass. */
  readonly redisCpuSeconds: number;
  /** Processes Redis forked during the pass (AOF rewrites): 0 for a fair figure. */
  readonly redisForks?: number;
  /**
   * Redis time by command during the pass (INFO commandstats), largest first: a script's own line
   * (evalsha) includes the commands it calls, which have lines of their own too.
   */
  readonly redisCommands?: readonly RedisCommandTime[];
}

export interface RedisCommandTime {
  readonly command: string;
  readonly calls: number;
  readonly seconds: number;
}

export interface PlannerBenchFigures {
  readonly mailboxes: number;
  readonly pageSize: number;
  readonly seedSeconds: number;
  /**
   * The AOF rewritten once the registry is seeded, before the passes: seeding a million mailboxes
   * makes Redis rewrite its AOF (auto-aof-rewrite-percentage) over and over, and a rewrite still
   * forking and writing a gigabyte during a pass takes a core from it. A gateway's daily run meets
   * the registry as a rewrite left it; `redisForks` of each pass says whether one happened anyway.
   */
  readonly aofRewriteSeconds: number;
  readonly pages: PlannerPassFigures & { readonly actions: Readonly<Record<InactivityAction, number>> };
  readonly run: PlannerPassFigures & {
    /** Steps written to the plan, and the decisions of the run's journal by `action:reason`. */
    readonly planned: number;
    readonly decisions: Readonly<Record<string, number>>;
    /** The run's state once stopped: `executing`, cursor 0, total = planned. */
    readonly state: { readonly phase: string; readonly cursor: string; readonly total: string };
  };
  /**
   * With BENCH_LIFECYCLE_BASELINE=1: the planner alone reading the registry as it did before summaries
   * (`list` pages of 1,000, a pipelined HGETALL per mailbox), in a process of its own, for comparison.
   */
  readonly baseline?: PlannerPassFigures & { readonly peakRssMiB: number };
  /** Peak RSS and heap of the planning process over both passes. */
  readonly peakRssMiB: number;
  readonly peakHeapMiB: number;
  /** Redis's own memory (INFO used_memory) with the registry seeded, and with the plan written. */
  readonly redisSeededMiB: number;
  readonly redisPlannedMiB: number;
  readonly loadAverage: { readonly before: string; readonly after: string };
}

const PREFIX = 'bench:';
const TIME_ZONE = 'Europe/Paris';

export async function runLifecyclePlannerBench(
  count: number,
  pageSize = DEFAULT_PAGE_SIZE,
): Promise<PlannerBenchFigures> {
  const root = mkdtempSync(path.join(tmpdir(), 'mssgw-bench-lifecycle-'));
  const server = await startEmbeddedRedis({
    dataDir: path.join(root, 'var'),
    logger: createLogger({ level: 'silent' }),
  });
  const redis = createRedisClient(server.url, { name: 'bench' });
  try {
    const seedStart = performance.now();
    const seeded = await seedRegistry(redis, PREFIX, seedPopulation(count, 7));
    const seedSeconds = (performance.now() - seedStart) / 1000;
    const aofRewriteSeconds = await settleAof(redis);
    const redisSeededMiB = await redisMemoryMiB(redis);
    const before = loadAverage();
    const probe = { redisCpu: () => redisCpuSeconds(redis), redisSnapshot: () => redisSnapshot(redis) };
    const baseline =
      process.env.BENCH_LIFECYCLE_BASELINE === '1' ? await runBaselineChild(server.url, probe) : undefined;
    const child = await runPlannerChild(server.url, pageSize, probe);
    return {
      mailboxes: seeded,
      pageSize,
      seedSeconds,
      aofRewriteSeconds,
      ...(baseline === undefined ? {} : { baseline }),
      ...child,
      redisSeededMiB,
      redisPlannedMiB: await redisMemoryMiB(redis),
      loadAverage: { before, after: loadAverage() },
    };
  } finally {
    redis.disconnect();
    await server.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

type ChildFigures = Pick<PlannerBenchFigures, 'pages' | 'run' | 'peakRssMiB' | 'peakHeapMiB'>;

/** What the child reports of one pass; the parent adds the Redis server's CPU between the marks. */
type ChildLine =
  | { readonly mark: 'pages' | 'run' }
  | { readonly done: Omit<ChildFigures, 'pages' | 'run'> & ChildPassLines };

interface ChildPassLines {
  readonly pages: Omit<PlannerBenchFigures['pages'], 'redisCpuSeconds'>;
  readonly run: Omit<PlannerBenchFigures['run'], 'redisCpuSeconds'>;
}

const PLANNER_CHILD = '--lifecycle-planner-child';
const BASELINE_CHILD = '--lifecycle-baseline-child';

const quietJournal = (record: (e: AuditEvent) => void = () => undefined): AuditJournal => ({
  record,
  flush: () => undefined,
  close: () => undefined,
});

/** The seeded registry, read at the benchmark's fixed instant; it creates no mailbox. */
const benchRegistry = (redis: Redis): BalRegistry =>
  new BalRegistry({
    redis,
    prefix: PREFIX,
    domains: ['op.mssante.test'],
    clock: { now: () => new Date(NOW) },
    journal: quietJournal(),
    provisioner: { provision: () => Promise.reject(new Error('the benchmark creates no mailbox')) },
  });

/** Both passes, in a process that did not seed the registry: its memory is the run's. */
async function plannerChild(redisUrl: string, pageSize: number): Promise<void> {
  const say = (line: ChildLine) => process.stdout.write(`${JSON.stringify(line)}\n`);
  const redis = createRedisClient(redisUrl, { name: 'bench-planner' });
  try {
    const registry = benchRegistry(redis);
    const activity = ActivityStore.withPrefix(redis, PREFIX);
    const publication = new AssumedPublication({ redis, prefix: PREFIX });
    const peak = new MemoryPeak().start(20);

    say({ mark: 'pages' });
    const planner = new LifecyclePlanner({
      redis,
      prefix: PREFIX,
      thresholds: THRESHOLDS,
      registry,
      activity,
      publication,
    });
    const actions: Record<InactivityAction, number> = { none: 0, warn: 0, 'unpublish-inactive': 0 };
    let cpu = process.cpuUsage();
    let start = performance.now();
    for await (const page of planner.pages(NOW, pageSize)) {
      for (const p of page) actions[p.decision.action] += 1;
    }
    const pages = { ...pass(start, cpu), actions };

    say({ mark: 'run' });
    const stop = new AbortController();
    let planned: AuditEvent | undefined;
    let plannedAt = 0;
    const refuse = () => Promise.reject(new Error('the benchmark stops the run before its steps'));
    const runner = new LifecycleRunner({
      redis,
      prefix: PREFIX,
      config: { ...THRESHOLDS, timeZone: TIME_ZONE, deletedMailRetentionDays: 90 },
      registry,
      activity,
      publication,
      publisher: { unpublishInactive: refuse, republish: refuse },
      warnings: { deliver: refuse },
      clock: { now: () => new Date(NOW) },
      journal: quietJournal((event) => {
        if (event.event !== 'lifecycle.run.planned') return;
        plannedAt = performance.now();
        planned = event;
        stop.abort(); // the run stops before its first step, as when the gateway stops
      }),
      logger: createLogger({ level: 'silent' }),
    });
    cpu = process.cpuUsage();
    start = performance.now();
    const stopped = await runner.runOnce(stop.signal).then(
      () => false,
      (err: unknown) => {
        if (planned === undefined) throw err; // it failed before it had planned
        return true;
      },
    );
    if (!stopped && Number(planned?.total ?? 0) > 0) throw new Error('the run went on past its plan');
    const runPass = pass(start, cpu, plannedAt);
    const state = await redis.hgetall(new LifecycleKeys(PREFIX).run(dayInZone(NOW, TIME_ZONE)));
    peak.stop().sample();
    say({
      done: {
        pages,
        run: {
          ...runPass,
          planned: Number(planned?.total ?? 0),
          decisions: (planned?.decisions ?? {}) as Record<string, number>,
          state: { phase: state.phase ?? '', cursor: state.cursor ?? '', total: state.total ?? '' },
        },
        peakRssMiB: Math.max(peak.rss, process.resourceUsage().maxRSS * 1024) / MiB,
        peakHeapMiB: peak.heapMiB,
      },
    });
  } finally {
    redis.disconnect();
  }
}

/**
 * The planner reading the registry the way it did before summaries: `list` pages of 1,000 whole
 * records (a pipelined HGETALL per mailbox, 200 per round trip), the rest unchanged.
 */
async function baselineChild(redisUrl: string): Promise<void> {
  const redis = createRedisClient(redisUrl, { name: 'bench-baseline' });
  try {
    const registry = benchRegistry(redis);
    const planner = new LifecyclePlanner({
      redis,
      prefix: PREFIX,
      thresholds: THRESHOLDS,
      registry: {
        get: (address) => registry.get(address),
        summaries: (q) =>
          registry.list({ limit: 1000, ...(q.cursor === undefined ? {} : { cursor: q.cursor }) }),
      },
      activity: ActivityStore.withPrefix(redis, PREFIX),
      publication: new AssumedPublication({ redis, prefix: PREFIX }),
    });
    const peak = new MemoryPeak().start(20);
    const cpu = process.cpuUsage();
    const start = performance.now();
    let seen = 0;
    for await (const page of planner.pages(NOW, 1000)) seen += page.length;
    const figures = pass(start, cpu);
    peak.stop().sample();
    const peakRssMiB = Math.max(peak.rss, process.resourceUsage().maxRSS * 1024) / MiB;
    process.stdout.write(`${JSON.stringify({ ...figures, seen, peakRssMiB })}\n`);
  } finally {
    redis.disconnect();
  }
}

async function runBaselineChild(
  redisUrl: string,
  probe: { redisCpu: () => Promise<number> },
): Promise<NonNullable<PlannerBenchFigures['baseline']>> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', fileURLToPath(import.meta.url), BASELINE_CHILD, redisUrl],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const redisBefore = await probe.redisCpu();
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`baseline child exited with ${code}`);
  const figures = JSON.parse(out.trim()) as Omit<PlannerPassFigures, 'redisCpuSeconds'> & {
    peakRssMiB: number;
  };
  return { ...figures, redisCpuSeconds: (await probe.redisCpu()) - redisBefore };
}

function pass(
  start: number,
  cpu: NodeJS.CpuUsage,
  end = performance.now(),
): Omit<PlannerPassFigures, 'redisCpuSeconds'> {
  const used = process.cpuUsage(cpu);
  return { seconds: (end - start) / 1000, cpuSeconds: (used.user + used.system) / 1e6 };
}

/**
 * Runs the child, reading the Redis server's CPU at each of its marks so that each pass gets its
 * own share (loopback: the server works for this client only).
 */
async function runPlannerChild(
  redisUrl: string,
  pageSize: number,
  probe: { redisSnapshot: () => Promise<RedisSnapshot> },
): Promise<ChildFigures> {
  const child = spawn(
    process.execPath,
    [
      // BENCH_PROFILE_DIR=dir: a CPU profile of the planning there (node --cpu-prof).
      ...(process.env.BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
        : []),
      '--import',
      'tsx',
      fileURLToPath(import.meta.url),
      PLANNER_CHILD,
      redisUrl,
      String(pageSize),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const marks: Array<Promise<RedisSnapshot>> = [];
  let done: Extract<ChildLine, { done: unknown }>['done'] | undefined;
  let buffered = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
    buffered += chunk;
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = JSON.parse(buffered.slice(0, nl)) as ChildLine;
      buffered = buffered.slice(nl + 1);
      if ('mark' in line) marks.push(probe.redisSnapshot());
      else done = line.done;
    }
  });
  const [code] = (await once(child, 'exit')) as [number | null];
  const exited = probe.redisSnapshot();
  if (code !== 0 || done === undefined) throw new Error(`planner child exited with ${code}`);
  const [atPages, atRun, atEnd] = await Promise.all([marks[0], marks[1], exited]);
  if (atPages === undefined || atRun === undefined) throw new Error('planner child skipped a mark');
  return {
    ...done,
    pages: { ...done.pages, ...redisBetween(atPages, atRun) },
    run: { ...done.run, ...redisBetween(atRun, atEnd) },
  };
}

/** What the Redis server had done at an instant: its CPU, and its time and calls by command. */
interface RedisSnapshot {
  readonly cpuSeconds: number;
  readonly forks: number;
  readonly commands: ReadonlyMap<string, { readonly calls: number; readonly usec: number }>;
}

async function redisSnapshot(redis: Redis): Promise<RedisSnapshot> {
  const [cpuSeconds, stats, forks] = await Promise.all([
    redisCpuSeconds(redis),
    redis.info('commandstats'),
    redis.info('stats').then((info) => Number(/total_forks:(\d+)/.exec(info)?.[1] ?? 0)),
  ]);
  const commands = new Map<string, { calls: number; usec: number }>();
  // cmdstat_evalsha:calls=50,usec=123456,usec_per_call=...
  for (const m of stats.matchAll(/^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/gm)) {
    commands.set(m[1] ?? '', { calls: Number(m[2]), usec: Number(m[3]) });
  }
  return { cpuSeconds, forks, commands };
}

/** The server's CPU and the commands it ran between two snapshots, the costliest first (the 6 largest). */
function redisBetween(
  a: RedisSnapshot,
  b: RedisSnapshot,
): Pick<PlannerPassFigures, 'redisCpuSeconds' | 'redisForks' | 'redisCommands'> {
  const commands: RedisCommandTime[] = [];
  for (const [command, after] of b.commands) {
    const before = a.commands.get(command) ?? { calls: 0, usec: 0 };
    const calls = after.calls - before.calls;
    if (calls > 0) commands.push({ command, calls, seconds: (after.usec - before.usec) / 1e6 });
  }
  commands.sort((x, y) => y.seconds - x.seconds);
  return {
    redisCpuSeconds: b.cpuSeconds - a.cpuSeconds,
    redisForks: b.forks - a.forks,
    redisCommands: commands.slice(0, 6),
  };
}

/**
 * Waits for an AOF rewrite the seeding started, has the AOF rewritten once more (so that the plan's
 * writes do not double it and start one during a pass) and waits for that one; returns the seconds.
 */
async function settleAof(redis: Redis): Promise<number> {
  const start = performance.now();
  const rewriting = async () => {
    const info = await redis.info('persistence');
    return /aof_rewrite_in_progress:1|aof_rewrite_scheduled:1/.test(info);
  };
  const settled = async () => {
    // A million mailboxes rewrite in well under a minute; ten are a stuck server.
    while (await rewriting()) {
      if (performance.now() - start > 600_000) throw new Error('Redis AOF rewrite still going after 10 min');
      await sleep(100);
    }
  };
  await settled();
  await redis.bgrewriteaof();
  await settled();
  return (performance.now() - start) / 1000;
}

/** Redis server CPU seconds so far (user + system), from INFO. */
async function redisCpuSeconds(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return field('used_cpu_user') + field('used_cpu_sys');
}

async function redisMemoryMiB(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0) / MiB;
}

/** The bound issue 16 sets on the daily run's planning from Redis. */
export const PLANNER_TARGET = { mailboxes: 1_000_000, seconds: 30, peakRssMiB: 512 } as const;

export function formatLifecyclePlannerBench(r: PlannerBenchFigures): string {
  const full = r.mailboxes >= PLANNER_TARGET.mailboxes;
  // Below the target's size, the time is scaled linearly (pages are independent): say so.
  const seconds = full ? r.run.seconds : (r.run.seconds * PLANNER_TARGET.mailboxes) / r.mailboxes;
  const n = (x: number) => x.toLocaleString('en');
  const p = r.pages;
  const decisions = Object.entries(r.run.decisions)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k} ${n(v)}`)
    .join(', ');
  return [
    `lifecycle planning from Redis: ${n(r.mailboxes)} mailboxes (seeded in ${r.seedSeconds.toFixed(1)} s, ` +
      `AOF rewritten in ${r.aofRewriteSeconds.toFixed(1)} s), pages of ${n(r.pageSize)}`,
    `  planner alone: ${p.seconds.toFixed(2)} s, ${n(Math.round(r.mailboxes / p.seconds))} mailboxes/s, ` +
      `CPU ${p.cpuSeconds.toFixed(2)} s, Redis CPU ${p.redisCpuSeconds.toFixed(2)} s; ` +
      `none ${n(p.actions.none)}, warn ${n(p.actions.warn)}, unpublish ${n(p.actions['unpublish-inactive'])}`,
    ...commandLine(p),
    `  run's planning phase (lock, plan of ${n(r.run.planned)} steps written): ${r.run.seconds.toFixed(2)} s, ` +
      `CPU ${r.run.cpuSeconds.toFixed(2)} s, Redis CPU ${r.run.redisCpuSeconds.toFixed(2)} s`,
    ...commandLine(r.run),
    ...(r.baseline === undefined
      ? []
      : [
          `  before (list pages, HGETALL per mailbox), planner alone: ${r.baseline.seconds.toFixed(2)} s, ` +
            `CPU ${r.baseline.cpuSeconds.toFixed(2)} s, Redis CPU ${r.baseline.redisCpuSeconds.toFixed(2)} s, ` +
            `peak RSS ${r.baseline.peakRssMiB.toFixed(0)} MiB`,
        ]),
    `  decisions: ${decisions}`,
    `  run stopped after planning: phase ${r.run.state.phase}, cursor ${r.run.state.cursor} of ${r.run.state.total} (resumable)`,
    `  planning process peak RSS ${r.peakRssMiB.toFixed(0)} MiB, peak heap ${r.peakHeapMiB.toFixed(0)} MiB; ` +
      `Redis used_memory ${r.redisSeededMiB.toFixed(0)} MiB seeded, ${r.redisPlannedMiB.toFixed(0)} MiB with the plan`,
    `  load average ${r.loadAverage.before} before, ${r.loadAverage.after} after`,
    `  target, ${n(PLANNER_TARGET.mailboxes)} mailboxes planned by the run: time ` +
      `${againstTarget(seconds, PLANNER_TARGET.seconds, 's')}${full ? '' : ` (extrapolated from ${n(r.mailboxes)})`}, ` +
      `peak RSS ${againstTarget(r.peakRssMiB, PLANNER_TARGET.peakRssMiB, 'MiB', 0)}${full ? '' : ' (at the smaller size)'}`,
  ].join('\n');
}

/** `    Redis time: evalsha 1.20 s (500 calls), zmscore 0.31 s (500), …`, or nothing. */
function commandLine(pass: PlannerPassFigures): string[] {
  if (pass.redisCommands === undefined || pass.redisCommands.length === 0) return [];
  const each = pass.redisCommands.map(
    (c, i) =>
      `${c.command} ${c.seconds.toFixed(2)} s (${c.calls.toLocaleString('en')}${i === 0 ? ' calls' : ''})`,
  );
  const forks = pass.redisForks === undefined ? '' : `; Redis forks ${pass.redisForks}`;
  return [`    Redis time: ${each.join(', ')}${forks}`];
}

// `node --import tsx bench/lifecycle-planner.ts COUNT [PAGE_SIZE]` runs this benchmark alone.
if (process.argv[2] === PLANNER_CHILD) {
  await plannerChild(process.argv[3] ?? '', Number(process.argv[4] ?? DEFAULT_PAGE_SIZE));
  process.exit(0);
} else if (process.argv[2] === BASELINE_CHILD) {
  await baselineChild(process.argv[3] ?? '');
  process.exit(0);
} else if (import.meta.url === `file://${process.argv[1]}`) {
  const count = Number(process.argv[2] ?? 100_000);
  const pageSize = Number(process.argv[3] ?? DEFAULT_PAGE_SIZE);
  console.log(formatLifecyclePlannerBench(await runLifecyclePlannerBench(count, pageSize)));
}
