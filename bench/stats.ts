/** Figures the benchmarks share: latency percentiles and the peak memory of this process. */

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

/** `2.41 s (target ≤ 3 s: met)`: a figure next to its target, for the figures an issue sets a bound on. */
export function againstTarget(value: number, target: number, unit: string, digits = 1): string {
  const verdict = value <= target ? 'met' : 'NOT met';
  return `${value.toFixed(digits)} ${unit} (target ≤ ${target} ${unit}: ${verdict})`;
}
