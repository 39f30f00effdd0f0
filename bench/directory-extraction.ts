import { spawn } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { copyFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import yazl from 'yazl';
import { createLogger } from '../src/observability/index.js';
import { ensureDevPki } from '../src/pki/index.js';
import type { Redis } from 'ioredis';
import { createRedisClient, startEmbeddedRedis } from '../src/redis/index.js';
import { EXTRACTION_HEADER, extractionLine } from '../test/helpers/national-data.js';
import { buildDistIfStale } from './bench-gateway.js';
import { MiB, againstTarget, loadAverage } from './stats.js';

/**
 * The BAL extraction at its real size (MSSANTE.md: ~536,000 lines, ~90 MB of text in a ~20 MB ZIP,
 * with duplicates), loaded through the real refresh path (file source, SHA-256, ZIP inflate and
 * CRC check, streamed parse, batched writes to a versioned Redis hash, atomic switch) into an
 * embedded Redis. Twice: a first load, then the next day's copy, diffed against the first.
 * Each load runs in a process of its own (the generator's garbage is not the load's): prints its time,
 * its CPU time and the Redis server's, lines per second, entries, its peak RSS and heap, the load average.
 */
export interface ExtractionLoadFigures {
  readonly label: string;
  readonly seconds: number;
  /** CPU time (user + system) of the loading process. */
  readonly cpuSeconds: number;
  /** CPU time (user + system) of the Redis server during the load. */
  readonly redisCpuSeconds: number;
  /**
   * CPU time of the Redis server's children during the load: AOF rewrites, which the load's writes
   * start (the AOF doubled past 64 MB) and which take the second core while the load runs.
   */
  readonly redisChildCpuSeconds: number;
  readonly linesPerSecond: number;
  readonly entries: number;
  readonly added?: number;
  readonly removed?: number;
  readonly peakRssMiB: number;
  readonly peakHeapMiB: number;
  /** Redis used_memory once the replaced version is freed. */
  readonly redisUsedMiB: number;
  /** /proc/loadavg when the load ended (the machine is shared). */
  readonly loadAverage: string;
}

export interface ExtractionBenchResult {
  readonly lines: number;
  readonly duplicates: number;
  readonly textMiB: number;
  readonly zipMiB: number;
  readonly generateSeconds: number;
  readonly loads: readonly ExtractionLoadFigures[];
  readonly baselineRssMiB: number;
}

/** Writes the text (every 50th line repeats an earlier address), then zips it, both streamed. */
async function generate(dir: string, lines: number, shift: number): Promise<{ zip: string; text: string }> {
  const text = path.join(dir, `extraction-${shift}.txt`);
  const out = createWriteStream(text);
  const write = async (s: string) => {
    if (!out.write(s)) await once(out, 'drain');
  };
  await write(`${EXTRACTION_HEADER}\n`);
  for (let i = 0; i < lines; i++) {
    const n = i % 50 === 49 ? i - 17 + shift : i + shift; // ~2 % duplicates
    await write(
      `${extractionLine(`prenom.nom${n}@domaine${n % 400}.mssante.fr`, n, n % 9 === 0 ? 'ORG' : 'PER')}\n`,
    );
  }
  out.end();
  await once(out, 'finish');
  const zip = path.join(dir, `extraction-${shift}.zip`);
  const z = new yazl.ZipFile();
  z.addFile(text, 'Extraction_Correspondance_MSSante.txt');
  z.end();
  const zipOut = z.outputStream.pipe(createWriteStream(zip));
  await once(zipOut, 'finish');
  return { zip, text };
}

/** What a load child needs: where the data, the PKI, the source copy and the Redis are. */
interface LoadChildInput {
  readonly root: string;
  readonly pkiDir: string;
  readonly source: string;
  readonly redisUrl: string;
}

/** What a load child measured of itself (bench/extraction-load-child.mjs). */
interface LoadChildFigures {
  readonly outcome: string;
  readonly detail: string;
  readonly seconds: number;
  readonly cpuSeconds: number;
  readonly entries: number;
  readonly added?: number;
  readonly removed?: number;
  readonly peakRssMiB: number;
  readonly peakHeapMiB: number;
  readonly baselineRssMiB: number;
}

const ROOT = fileURLToPath(new URL('..', import.meta.url));

/**
 * One refresh in a process of its own, as a gateway process runs it: node on the built dist/ code,
 * so that its RSS is the product's, not the TypeScript loader's, the generator's garbage or the
 * previous load's.
 */
async function runLoadChild(input: LoadChildInput): Promise<LoadChildFigures> {
  const child = spawn(
    process.execPath,
    [
      '--expose-gc',
      // BENCH_NODE_ARGS='--trace-gc ...': more options for the load child (space-separated).
      ...(process.env.BENCH_NODE_ARGS?.split(' ').filter(Boolean) ?? []),
      // BENCH_PROFILE_DIR=dir: a CPU profile of each load there (node --cpu-prof).
      ...(process.env.BENCH_PROFILE_DIR
        ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE_DIR}`]
        : []),
      path.join(ROOT, 'bench', 'extraction-load-child.mjs'),
      JSON.stringify(input),
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`extraction load child exited with ${code}: ${out}`);
  return JSON.parse(out.trim().split('\n').pop() ?? '') as LoadChildFigures;
}

/** Redis server CPU seconds so far (user + system), its own and its children's, from INFO. */
async function redisCpuSeconds(redis: Redis): Promise<{ own: number; children: number }> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`${name}:([\\d.]+)`).exec(info)?.[1] ?? 0);
  return {
    own: field('used_cpu_user') + field('used_cpu_sys'),
    children: field('used_cpu_user_children') + field('used_cpu_sys_children'),
  };
}

export async function runExtractionBench(lines = 536_000): Promise<ExtractionBenchResult> {
  buildDistIfStale(); // the load children run dist/
  const root = mkdtempSync(path.join(tmpdir(), 'mssgw-bench-dir-'));
  const pkiDir = path.join(root, 'pki');
  await ensureDevPki(pkiDir);
  const t0 = performance.now();
  const day1 = await generate(root, lines, 0);
  // The next day: 1 % of the addresses gone, as many new ones.
  const day2 = await generate(root, lines, Math.round(lines / 100));
  const generateSeconds = (performance.now() - t0) / 1000;
  const source = path.join(root, 'source.zip');
  const redisServer = await startEmbeddedRedis({
    dataDir: path.join(root, 'var'),
    logger: createLogger({ level: 'silent' }),
  });
  const redis = createRedisClient(redisServer.url, { name: 'bench' });
  try {
    const loads: ExtractionLoadFigures[] = [];
    let baselineRssMiB = 0;
    for (const [label, file] of [
      ['first load', day1.zip],
      ['next day (diffed)', day2.zip],
    ] as const) {
      await copyFile(file, source); // the day's copy appears at the configured source
      const redisCpu = await redisCpuSeconds(redis);
      const load = await runLoadChild({ root, pkiDir, source, redisUrl: redisServer.url });
      const redisCpuAfter = await redisCpuSeconds(redis);
      const redisUsed = await redisMemoryAfterLazyFree(redis);
      if (load.outcome !== 'accepted') throw new Error(`bench load ${label}: ${load.outcome} ${load.detail}`);
      baselineRssMiB = Math.max(baselineRssMiB, load.baselineRssMiB);
      loads.push({
        label,
        seconds: load.seconds,
        cpuSeconds: load.cpuSeconds,
        redisCpuSeconds: redisCpuAfter.own - redisCpu.own,
        redisChildCpuSeconds: redisCpuAfter.children - redisCpu.children,
        linesPerSecond: lines / load.seconds,
        entries: load.entries,
        ...(load.added === undefined ? {} : { added: load.added }),
        ...(load.removed === undefined ? {} : { removed: load.removed }),
        peakRssMiB: load.peakRssMiB,
        peakHeapMiB: load.peakHeapMiB,
        redisUsedMiB: redisUsed / MiB,
        loadAverage: loadAverage(),
      });
    }
    return {
      lines,
      duplicates: Math.floor(lines / 50),
      textMiB: statSync(day1.text).size / MiB,
      zipMiB: statSync(day2.zip).size / MiB,
      generateSeconds,
      loads,
      baselineRssMiB,
    };
  } finally {
    await redis.quit().catch(() => redis.disconnect());
    await redisServer.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

/** used_memory once UNLINK's background freeing of the replaced version is done. */
async function redisMemoryAfterLazyFree(redis: Redis): Promise<number> {
  for (;;) {
    const info = await redis.info('memory');
    if (/lazyfree_pending_objects:0\b/.test(info)) return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
    await new Promise((r) => setTimeout(r, 50)); // polling a condition, not a fixed wait
  }
}

/** The bound issue 16 sets on each load, first and next-day alike. */
export const EXTRACTION_TARGET = { lines: 536_000, seconds: 3, peakRssMiB: 200 } as const;

export function formatExtractionBench(r: ExtractionBenchResult): string {
  return [
    `directory extraction: ${r.lines} lines (${r.duplicates} duplicates), text ${r.textMiB.toFixed(1)} MiB, ZIP ${r.zipMiB.toFixed(1)} MiB (generated in ${r.generateSeconds.toFixed(1)} s)`,
    ...r.loads.map(
      (l) =>
        `  ${l.label}: ${l.seconds.toFixed(2)} s (CPU ${l.cpuSeconds.toFixed(2)} s, Redis CPU ${l.redisCpuSeconds.toFixed(2)} s + AOF rewrite ${l.redisChildCpuSeconds.toFixed(2)} s; load average ${l.loadAverage}), ${Math.round(l.linesPerSecond)} lines/s, ${l.entries} entries` +
        `${l.added === undefined ? '' : `, +${l.added} −${l.removed ?? 0}`}; peak RSS ${l.peakRssMiB.toFixed(0)} MiB, peak heap ${l.peakHeapMiB.toFixed(0)} MiB; Redis ${l.redisUsedMiB.toFixed(0)} MiB`,
    ),
    `  each load runs in a process of its own; node on dist/; its RSS before loading ${r.baselineRssMiB.toFixed(0)} MiB (the modules, the PKI, the clients); Redis is used_memory with one version in service`,
    // Issue 16: each load of the national extraction (536,000 lines) in ≤ 3 s with a peak RSS ≤ 200 MiB.
    ...r.loads.map(
      (l) =>
        `  target, ${l.label}: time ${againstTarget(l.seconds, EXTRACTION_TARGET.seconds, 's', 2)} ` +
        `(CPU ${againstTarget(l.cpuSeconds, EXTRACTION_TARGET.seconds, 's', 2)}), ` +
        `peak RSS ${againstTarget(l.peakRssMiB, EXTRACTION_TARGET.peakRssMiB, 'MiB', 0)}` +
        `${r.lines === EXTRACTION_TARGET.lines ? '' : ` (at ${r.lines} lines; the target is for ${EXTRACTION_TARGET.lines})`}`,
    ),
  ].join('\n');
}
