import { decideInactivity, type InactivityAction, type PolicySubject } from '../src/lifecycle/index.js';
import { NOW, THRESHOLDS, generator } from './lifecycle-population.js';
import { MemoryPeak, MiB } from './stats.js';

// The planning from Redis has its own file; `npm run bench -- lifecycle` runs both from here.
export {
  PLANNER_TARGET,
  formatLifecyclePlannerBench,
  runLifecyclePlannerBench,
  type PlannerBenchFigures,
} from './lifecycle-planner.js';

/**
 * The inactivity policy (src/lifecycle/inactivity-policy.ts) over COUNT generated mailboxes, the way
 * the daily run applies it: a page of 1,000 subjects at a time (the run's page size), then once more
 * with every subject held in memory at once. The population looks like an operator's: most mailboxes
 * used in the last weeks, some idle for months, a few never used, suspended, deleted, red-listed or
 * not published. Prints the duration, the decisions per second, the decisions by action, and the
 * peak RSS and heap of this process.
 */
export interface PolicyBenchFigures {
  readonly label: string;
  readonly mailboxes: number;
  readonly seconds: number;
  readonly decisionsPerSecond: number;
  readonly actions: Readonly<Record<InactivityAction, number>>;
  readonly peakRssMiB: number;
  readonly peakHeapMiB: number;
}

const PAGE = 1000;

function emptyActions(): Record<InactivityAction, number> {
  return { none: 0, warn: 0, 'unpublish-inactive': 0 };
}

/** Pages of 1,000 subjects generated, decided, dropped: what the run holds at a time. */
function paged(count: number): PolicyBenchFigures {
  const subject = generator(45);
  const actions = emptyActions();
  const peak = new MemoryPeak();
  const start = performance.now();
  for (let offset = 0; offset < count; offset += PAGE) {
    const page: PolicySubject[] = [];
    for (let i = offset; i < Math.min(count, offset + PAGE); i += 1) page.push(subject(i));
    for (const s of page) actions[decideInactivity(s, NOW, THRESHOLDS).action] += 1;
    if (offset % (100 * PAGE) === 0) peak.sample();
  }
  const seconds = (performance.now() - start) / 1000;
  peak.sample();
  return figures('paged (1,000 at a time, generation included)', count, seconds, actions, peak);
}

/** Every subject in memory first, then the policy alone over all of them. */
function inMemory(count: number): PolicyBenchFigures {
  const subject = generator(45);
  const peak = new MemoryPeak();
  const subjects: PolicySubject[] = new Array<PolicySubject>(count);
  for (let i = 0; i < count; i += 1) subjects[i] = subject(i);
  peak.sample();
  const actions = emptyActions();
  const start = performance.now();
  for (const s of subjects) actions[decideInactivity(s, NOW, THRESHOLDS).action] += 1;
  const seconds = (performance.now() - start) / 1000;
  peak.sample();
  return figures('all in memory (policy alone)', count, seconds, actions, peak);
}

function figures(
  label: string,
  mailboxes: number,
  seconds: number,
  actions: Record<InactivityAction, number>,
  peak: MemoryPeak,
): PolicyBenchFigures {
  return {
    label,
    mailboxes,
    seconds,
    decisionsPerSecond: mailboxes / seconds,
    actions,
    peakRssMiB: Math.max(peak.rss, process.resourceUsage().maxRSS * 1024) / MiB,
    peakHeapMiB: peak.heapMiB,
  };
}

export function runLifecyclePolicyBench(count: number): PolicyBenchFigures[] {
  // Paged first: its peak is what the daily run needs; the in-memory pass then raises the peak.
  return [paged(count), inMemory(count)];
}

export function formatLifecyclePolicyBench(results: readonly PolicyBenchFigures[]): string {
  return results
    .map((r) =>
      [
        `lifecycle policy: ${r.mailboxes.toLocaleString('en')} mailboxes, ${r.label}`,
        `  ${r.seconds.toFixed(2)} s, ${Math.round(r.decisionsPerSecond).toLocaleString('en')} decisions/s; ` +
          `none ${r.actions.none}, warn ${r.actions.warn}, unpublish ${r.actions['unpublish-inactive']}`,
        `  peak RSS ${r.peakRssMiB.toFixed(0)} MiB, peak heap ${r.peakHeapMiB.toFixed(0)} MiB`,
      ].join('\n'),
    )
    .join('\n');
}

// `node --import tsx bench/lifecycle-policy.ts [COUNT]` runs this benchmark alone.
if (import.meta.url === `file://${process.argv[1]}`) {
  console.log(formatLifecyclePolicyBench(runLifecyclePolicyBench(Number(process.argv[2] ?? 1_000_000))));
}
