import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, afterEach, beforeAll, inject } from 'vitest';
import { systemClock, type Clock } from '../../src/shared/index.js';
import { type Config, type ConfigInput, loadConfig } from '../../src/config/index.js';
import { DirectoryMirrors, WhitelistHolder, loadWhitelistFile } from '../../src/directory/index.js';
import {
  MemoryAuditJournal,
  type Metrics,
  createLogger,
  createMetrics,
} from '../../src/observability/index.js';
import { type TrustMaterial, devPkiSettings, loadTrustMaterial } from '../../src/pki/index.js';
import { createRedisClient } from '../../src/redis/index.js';
import { NationalServer } from './national-server.js';

/**
 * A DirectoryMirrors as the gateway builds it, on the run's Redis (a unique key prefix per test
 * unless one is given, to share it between two "processes") and the run's development PKI.
 */
export interface MirrorsHarness {
  readonly mirrors: DirectoryMirrors;
  readonly holder: WhitelistHolder;
  readonly journal: MemoryAuditJournal;
  readonly metrics: Metrics;
  readonly config: Config;
  readonly redis: Redis;
  readonly trust: TrustMaterial;
  readonly crlChanges: Array<{ name: string; file: string }>;
  /** Events of the journal with this name. */
  events(name: string): Array<Record<string, unknown>>;
  stop(): Promise<void>;
}

export function uniquePrefix(): string {
  return `t:${randomUUID().slice(0, 8)}:`;
}

export function scratchDir(name: string): string {
  const dir = path.join(inject('scratchDir'), `${name}-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

export async function startMirrors(options: {
  directory?: ConfigInput['directory'];
  prefix?: string;
  dataDir?: string;
  runRefreshes?: boolean;
  clock?: Clock;
  start?: boolean;
}): Promise<MirrorsHarness> {
  const pkiDir = inject('pkiDir');
  const redisUrl = inject('redisUrl');
  const config = loadConfig({
    configDir: '/nonexistent',
    env: {},
    overrides: {
      dataDir: options.dataDir ?? scratchDir('mirrors'),
      ...devPkiSettings(pkiDir),
      redis: { prefix: options.prefix ?? uniquePrefix() },
      ...(options.directory ? { directory: options.directory } : {}),
    },
  });
  const trust = loadTrustMaterial(config.tls).material;
  const clock = options.clock ?? systemClock;
  const redis = createRedisClient(redisUrl, { name: 'test-mirrors' });
  const holder = new WhitelistHolder(
    await loadWhitelistFile(config.whitelistFile, clock, config.directory.whitelist.maxInvalidShare),
  );
  const journal = new MemoryAuditJournal();
  const metrics = createMetrics();
  const crlChanges: Array<{ name: string; file: string }> = [];
  const mirrors = new DirectoryMirrors({
    config,
    redis,
    connect: (name) => createRedisClient(redisUrl, { name, maxRetriesPerRequest: null }),
    trust: () => trust,
    whitelist: holder,
    clock,
    logger: createLogger({ level: 'silent' }),
    journal,
    metrics,
    onCrlChange: (c) => crlChanges.push({ ...c }),
    runRefreshes: options.runRefreshes ?? false,
  });
  Object.assign(metrics.sources, mirrors.metricSources());
  if (options.start !== false) await mirrors.start();
  return {
    mirrors,
    holder,
    journal,
    metrics,
    config,
    redis,
    trust,
    crlChanges,
    events: (name) => journal.events.filter((e) => e.event === name),
    stop: async () => {
      await mirrors.stop();
      await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** The value of one labelled series of a metric, from the registry as a scrape sees it. */
export async function metricValue(
  metrics: Metrics,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const metric = metrics.registry.getSingleMetric(name);
  if (!metric) return undefined;
  const data = await metric.get();
  const found = data.values.find((v) =>
    Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want),
  );
  return found?.value;
}

/** The national server of a test file and the harnesses its tests start. */
export interface NationalServerFixture {
  /** The server, started before the file's first test. */
  readonly server: () => NationalServer;
  /** Stops this harness after the current test. */
  readonly track: (harness: MirrorsHarness | Promise<MirrorsHarness>) => Promise<MirrorsHarness>;
  /** Forgets a harness the test stopped itself. */
  readonly untrack: (harness: MirrorsHarness) => void;
}

/**
 * Registers the hooks of a directory test file: one NationalServer (the development PKI's
 * peer-trusted certificate) for the whole file, and every tracked harness stopped after each test.
 */
export function useNationalServer(): NationalServerFixture {
  let server: NationalServer | undefined;
  const harnesses: MirrorsHarness[] = [];
  beforeAll(async () => {
    server = await NationalServer.start(inject('pkiDir'));
  });
  afterEach(async () => {
    for (const h of harnesses.splice(0)) await h.stop();
  });
  afterAll(async () => {
    await server?.close();
  });
  return {
    server: () => {
      if (!server) throw new Error('the national server starts in beforeAll: call server() inside a test');
      return server;
    },
    track: async (harness) => {
      const started = await harness;
      harnesses.push(started);
      return started;
    },
    untrack: (harness) => {
      const i = harnesses.indexOf(harness);
      if (i >= 0) harnesses.splice(i, 1);
    },
  };
}
