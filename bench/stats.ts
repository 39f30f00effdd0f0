/** Figures the benchmarks share: latency percentiles and the peak memory of this process. */
import { readFileSync, readdirSync } from 'node:fs';

export const MiB = 1024 * 1024;

export interface Percentiles {
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
}

/** The p-th percentile (0 to 100) of values sorted ascending: the value at rank ⌊p% · n⌋; 0 for none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/** p50, p95 and p99 of values in any order. */
export function percentiles(values: readonly number[]): Percentiles {
  const sorted = [...values].sort((a, b) => a - b);
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99) };
}

/**
 * The peak RSS and heap of this process, from samples taken with `sample()` (at chosen points of a
 * loop) or every few milliseconds between `start()` and `stop()`.
 */
export class MemoryPeak {
  rss = 0;
  heap = 0;
  #timer: NodeJS.Timeout | undefined;

  sample(): this {
    const m = process.memoryUsage();
    this.rss = Math.max(this.rss, m.rss);
    this.heap = Math.max(this.heap, m.heapUsed);
    return this;
  }

  /** Samples now, then every `intervalMs` until `stop()`. */
  start(intervalMs: number): this {
    this.sample();
    clearInterval(this.#timer);
    this.#timer = setInterval(() => this.sample(), intervalMs);
    return this;
  }

  stop(): this {
    clearInterval(this.#timer);
    this.#timer = undefined;
    return this;
  }

  get rssMiB(): number {
    return this.rss / MiB;
  }

  get heapMiB(): number {
    return this.heap / MiB;
  }
}

/** The median of values in any order (the mean of the middle two for an even count); 0 for none. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

interface ProcStat {
  readonly pid: number;
  readonly ppid: number;
  readonly comm: string;
  /** utime + stime + cutime + cstime, clock ticks: its own CPU and that of its reaped children. */
  readonly ticks: number;
}

function readProcStat(pid: number): ProcStat | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined; // gone meanwhile
  }
  // comm is in parentheses and may contain spaces or parentheses: split after the last ')'.
  const close = text.lastIndexOf(')');
  const comm = text.slice(text.indexOf('(') + 1, close);
  const f = text.slice(close + 2).split(' ');
  // Fields from 3 (state): ppid is 4, utime 14, stime 15, cutime 16, cstime 17 (proc(5)).
  const n = (field: number) => Number(f[field - 3]);
  return { pid, ppid: n(4), comm, ticks: n(14) + n(15) + n(16) + n(17) };
}

/** Clock ticks per second of /proc times (sysconf(_SC_CLK_TCK); 100 on Linux). */
const CLOCK_TICKS = 100;

/**
 * CPU milliseconds used so far by a process and all its descendants, those that exited and were
 * reaped included (they are in their parent's cutime/cstime). Subtrees whose root's name matches
 * `exclude` are left out entirely (e.g. a Dovecot shared by both sides of a comparison).
 */
export function processTreeCpuMs(root: number, exclude?: RegExp): number {
  const all: ProcStat[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const s = readProcStat(Number(entry));
    if (s) all.push(s);
  }
  const children = new Map<number, ProcStat[]>();
  for (const s of all) children.set(s.ppid, [...(children.get(s.ppid) ?? []), s]);
  const top = all.find((s) => s.pid === root);
  if (!top) return 0;
  let ticks = 0;
  const stack = [top];
  while (stack.length > 0) {
    const s = stack.pop()!;
    if (exclude?.test(s.comm)) continue;
    ticks += s.ticks;
    stack.push(...(children.get(s.pid) ?? []));
  }
  return (ticks * 1000) / CLOCK_TICKS;
}

/** /proc/loadavg: the 1, 5 and 15 minute load averages. */
export function loadAverage(): string {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}

/** `2.41 s (target ≤ 3 s: met)`: a figure next to its target, for the figures an issue sets a bound on. */
export function againstTarget(value: number, target: number, unit: string, digits = 1): string {
  const verdict = value <= target ? 'met' : 'NOT met';
  return `${value.toFixed(digits)} ${unit} (target ≤ ${target} ${unit}: ${verdict})`;
}

/** `0.91 × (target ≥ 0.8 ×: met)`: like `againstTarget`, for a figure that must reach a floor. */
export function againstMinimum(value: number, target: number, unit: string, digits = 1): string {
  const verdict = value >= target ? 'met' : 'NOT met';
  return `${value.toFixed(digits)} ${unit} (target ≥ ${target} ${unit}: ${verdict})`;
}
