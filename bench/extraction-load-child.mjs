// One refresh of the BAL extraction mirror in a process of its own, as a gateway process runs it: the
// built dist/ code run by node (no TypeScript loader), so that its RSS is the product's. Started by
// bench/directory-extraction.ts with the JSON of its input; prints its figures as one JSON line.
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { setInterval, clearInterval } from 'node:timers';
import { fileURLToPath } from 'node:url';

const dist = fileURLToPath(new URL('../dist/', import.meta.url));
const load = (folder) => import(path.join(dist, folder, 'index.js'));
const [{ loadConfig }, directory, observability, pki, { createRedisClient }, { systemClock }] =
  await Promise.all(['config', 'directory', 'observability', 'pki', 'redis', 'shared'].map(load));
const MiB = 1024 * 1024;

const input = JSON.parse(process.argv[2] ?? '{}');
const config = loadConfig({
  configDir: '/nonexistent',
  env: {},
  overrides: {
    dataDir: path.join(input.root, 'var'),
    ...pki.devPkiSettings(input.pkiDir),
    directory: { extraction: { source: input.source, maxShrinkShare: 1 } },
  },
});
const redis = createRedisClient(input.redisUrl, { name: 'bench' });
const trust = pki.loadTrustMaterial(config.tls).material;
const mirrors = new directory.DirectoryMirrors({
  config,
  redis,
  connect: (name) => createRedisClient(input.redisUrl, { name, maxRetriesPerRequest: null }),
  trust: () => trust,
  whitelist: new directory.WhitelistHolder(
    await directory.loadWhitelistFile(
      config.whitelistFile,
      systemClock,
      config.directory.whitelist.maxInvalidShare,
    ),
  ),
  clock: systemClock,
  logger: observability.createLogger({ level: 'silent' }),
  journal: new observability.MemoryAuditJournal(),
  metrics: observability.createMetrics(),
  runRefreshes: false,
});

let figures;
try {
  await mirrors.start();
  globalThis.gc?.();
  const baselineRss = process.memoryUsage().rss;
  let peakRss = baselineRss;
  let peakHeap = 0;
  const sample = () => {
    const m = process.memoryUsage();
    peakRss = Math.max(peakRss, m.rss);
    peakHeap = Math.max(peakHeap, m.heapUsed);
  };
  const sampler = setInterval(sample, 20);
  const cpu = process.cpuUsage();
  const started = performance.now();
  const r = await mirrors.refresh('extraction');
  const seconds = (performance.now() - started) / 1000;
  const used = process.cpuUsage(cpu);
  clearInterval(sampler);
  sample();
  figures = {
    outcome: r.outcome,
    detail: `${r.reason} ${r.error ?? ''}`,
    seconds,
    cpuSeconds: (used.user + used.system) / 1e6,
    entries: r.entries ?? 0,
    ...(r.added === undefined ? {} : { added: r.added }),
    ...(r.removed === undefined ? {} : { removed: r.removed }),
    // maxRSS (the kernel's high-water mark, KiB) catches a peak between two samples.
    peakRssMiB: Math.max(peakRss, process.resourceUsage().maxRSS * 1024) / MiB,
    peakHeapMiB: peakHeap / MiB,
    baselineRssMiB: baselineRss / MiB,
  };
} finally {
  await mirrors.stop();
  await redis.quit().catch(() => redis.disconnect());
}
process.stdout.write(`${JSON.stringify(figures)}\n`);
process.exit(0);
