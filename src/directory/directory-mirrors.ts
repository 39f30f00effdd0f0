import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal, Logger, MetricSources, Metrics } from '../observability/index.js';
import { reportErrors } from '../observability/index.js';
import type { TrustMaterial } from '../pki/index.js';
import { type MirrorKind, crlFile, crlKind, extractionKind, whitelistKind } from './mirror-kinds.js';
import type { RefreshResult } from './mirror-outcome.js';
import { MIRROR_QUEUE, REFRESH_JOB, type RefreshJobData, bullPrefix, schedulerId } from './mirror-queue.js';
import { describeSource, runRefresh, type RefreshDeps } from './mirror-refresh.js';
import { isUrlSource } from './mirror-source.js';
import { MirrorStore, type MirrorState } from './mirror-store.js';
import { type MirrorStatus, mirrorAgeSeconds, readMirrorStatuses } from './mirror-status.js';
import { NationalDirectory } from './national-directory.js';
import type { WhitelistHolder } from './whitelist.js';

export interface DirectoryMirrorsOptions {
  readonly config: Pick<Config, 'directory' | 'whitelistFile' | 'dataDir'> & {
    readonly redis: Pick<Config['redis'], 'prefix'>;
  };
  /** Commands: mirror state, lookups, the refresh's writes. */
  readonly redis: Redis;
  /**
   * Makes a dedicated connection (BullMQ queue and worker, pub/sub subscriber); it must be created
   * with `maxRetriesPerRequest: null` (createRedisClient). Closed by stop().
   */
  readonly connect: (name: string) => Redis;
  readonly trust: () => TrustMaterial;
  readonly whitelist: WhitelistHolder;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly metrics: Pick<Metrics, 'mirrorRefreshes'>;
  /** Called in every process when a mirrored CRL file was rewritten (reload the TLS trust). */
  readonly onCrlChange?: (crl: { readonly name: string; readonly file: string }) => void;
  /** Called in every process after it put a new copy of a mirror in service. */
  readonly onSwitch?: (mirror: string, version: number) => void;
  /** Run the job schedulers and a worker here (default true); false: follow the others only. */
  readonly runRefreshes?: boolean;
}

/**
 * The mirrors of the national directory (ARCHITECTURE.md §3 `directory/`): the whitelist, the BAL
 * extraction and each configured CRL, refreshed on a BullMQ job scheduler (one runner for all
 * processes sharing the Redis), validated before use, and switched atomically everywhere: the
 * refreshing process announces a new version on pub/sub (and every process polls as a safety
 * net), then each process puts it in service (whitelist holder swap, CRL file rewrite).
 */
export class DirectoryMirrors {
  readonly directory: NationalDirectory;
  readonly #o: DirectoryMirrorsOptions;
  readonly #store: MirrorStore;
  readonly #kinds = new Map<string, MirrorKind>();
  readonly #applied = new Map<string, MirrorState>();
  readonly #syncing = new Map<string, Promise<void>>();
  readonly #connections: Redis[] = [];
  readonly #crlFiles = new Map<string, string>();
  #queue: Queue<RefreshJobData> | undefined;
  #worker: Worker<RefreshJobData, RefreshResult> | undefined;
  #poll: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: DirectoryMirrorsOptions) {
    this.#o = options;
    const { directory, whitelistFile, dataDir } = options.config;
    this.#store = new MirrorStore(options.redis, options.config.redis.prefix);
    this.directory = new NationalDirectory({ redis: options.redis, prefix: options.config.redis.prefix });
    const add = (kind: MirrorKind) => this.#kinds.set(kind.name, kind);
    add(
      whitelistKind({
        source: directory.whitelist.source ?? whitelistFile,
        refreshSeconds: directory.whitelist.refreshSeconds,
        maxShrinkShare: directory.whitelist.maxShrinkShare,
        maxInvalidShare: directory.whitelist.maxInvalidShare,
        holder: options.whitelist,
        clock: options.clock,
      }),
    );
    const { extraction } = directory;
    if (extraction.source !== undefined) add(extractionKind({ ...extraction, source: extraction.source }));
    for (const crl of directory.crls) {
      const file = crlFile(dataDir, crl.name);
      add(
        crlKind({
          ...crl,
          trust: options.trust,
          file,
          onChange: (f) => {
            this.#crlFiles.set(crl.name, f);
            options.onCrlChange?.({ name: crl.name, file: f });
          },
        }),
      );
    }
  }

  /** Names of the configured mirrors: `whitelist`, `extraction` (when a source is set), `crl:<name>`. */
  get mirrors(): string[] {
    return [...this.#kinds.keys()];
  }

  /**
   * Puts the stored copies in service (a restart serves the last good copies), follows changes, and
   * (runRefreshes) schedules the refreshes and works them.
   */
  async start(): Promise<void> {
    const { dataDir } = this.#o.config;
    await mkdir(path.join(dataDir, 'mirrors', 'crl'), { recursive: true, mode: 0o750 });
    await Promise.all(this.mirrors.map((m) => this.sync(m)));
    const subscriber = this.#connect('mssgw-directory-sub');
    subscriber.on('message', (_channel: string, mirror: string) => {
      if (this.#kinds.has(mirror)) void this.sync(mirror);
    });
    // A notification lost while the subscriber reconnects is caught up at once, then by the poll.
    subscriber.on('ready', () => void this.syncAll());
    await subscriber.subscribe(this.#store.keys.channel);
    this.#poll = setInterval(() => void this.syncAll(), this.#o.config.directory.pollSeconds * 1000);
    this.#poll.unref();
    if (this.#o.runRefreshes !== false) await this.#startScheduling();
  }

  async #startScheduling(): Promise<void> {
    const prefix = bullPrefix(this.#o.config.redis.prefix);
    const queue = new Queue<RefreshJobData>(MIRROR_QUEUE, {
      connection: this.#connect('mssgw-directory-queue'),
      prefix,
    });
    reportErrors(queue, this.#o.logger, { queue: MIRROR_QUEUE });
    this.#queue = queue;
    const known = new Set(this.mirrors.map(schedulerId));
    for (const s of await queue.getJobSchedulers()) {
      // A mirror removed from the configuration stops being refreshed.
      if (s.key && !known.has(s.key)) await queue.removeJobScheduler(s.key);
    }
    for (const kind of this.#kinds.values()) {
      await queue.upsertJobScheduler(
        schedulerId(kind.name),
        { every: kind.refreshSeconds * 1000 },
        {
          name: REFRESH_JOB,
          data: { mirror: kind.name },
          opts: { removeOnComplete: { count: 50 }, removeOnFail: { count: 50 } },
        },
      );
      const state = this.#applied.get(kind.name);
      // At start, a file source (cheap to check) or a changed or never-loaded source is refreshed
      // now rather than at the next due time; one job id for all processes starting together.
      if (!isUrlSource(kind.source) || state?.source !== describeSource(kind.source)) {
        await queue.add(
          REFRESH_JOB,
          { mirror: kind.name },
          { jobId: `start-${kind.name.replace(/:/g, '-')}`, removeOnComplete: true, removeOnFail: true },
        );
      }
    }
    this.#worker = new Worker<RefreshJobData, RefreshResult>(MIRROR_QUEUE, (job) => this.#work(job), {
      connection: this.#connect('mssgw-directory-worker'),
      prefix,
      concurrency: 4,
    });
    this.#worker.on('error', (err) =>
      this.#o.logger.warn({ event: 'directory.worker.error', err: err.message }, 'mirror worker error'),
    );
  }

  #work(job: Job<RefreshJobData, RefreshResult>): Promise<RefreshResult> {
    return this.refresh(job.data.mirror, { acceptShrink: job.data.acceptShrink === true });
  }

  #connect(name: string): Redis {
    const c = this.#o.connect(name);
    this.#connections.push(c);
    return c;
  }

  #refreshDeps(): RefreshDeps {
    const { config, trust } = this.#o;
    const f = config.directory.fetch;
    return {
      store: this.#store,
      clock: this.#o.clock,
      logger: this.#o.logger,
      journal: this.#o.journal,
      metrics: this.#o.metrics,
      lockTtlMs: f.timeoutSeconds * 1000 + 15 * 60_000,
      fetchOptions: () => {
        const t = trust();
        return {
          tmpDir: path.join(config.dataDir, 'mirrors', 'tmp'),
          timeoutMs: f.timeoutSeconds * 1000,
          maxBytes: f.maxBytes,
          tls: { ca: t.ca, ...(f.clientCertificate ? { cert: t.cert, key: t.key } : {}) },
        };
      },
    };
  }

  /**
   * Refreshes one mirror in this process now (the worker's job; tests and tools may call it). Only
   * one refresh of a mirror runs at a time across processes: a second one is `skipped`/`busy`.
   */
  async refresh(mirror: string, options: { acceptShrink?: boolean } = {}): Promise<RefreshResult> {
    const kind = this.#kinds.get(mirror);
    if (!kind)
      throw new GatewayError(
        'MIRROR_UNKNOWN',
        `no mirror ${mirror} (configured: ${this.mirrors.join(', ')})`,
        {
          mirror,
        },
      );
    const result = await runRefresh(kind, this.#refreshDeps(), options);
    if (result.outcome === 'accepted') await this.sync(mirror);
    return result;
  }

  /** Brings this process to the version in service of every mirror. */
  async syncAll(): Promise<void> {
    await Promise.all(this.mirrors.map((m) => this.sync(m)));
  }

  /** Brings this process to the version in service of one mirror (calls are serialised per mirror). */
  sync(mirror: string): Promise<void> {
    const previous = this.#syncing.get(mirror) ?? Promise.resolve();
    const next = previous.then(() => this.#syncOnce(mirror));
    this.#syncing.set(mirror, next);
    return next;
  }

  async #syncOnce(mirror: string): Promise<void> {
    const kind = this.#kinds.get(mirror);
    if (!kind || this.#stopped) return;
    try {
      const state = await this.#store.state(mirror);
      const applied = this.#applied.get(mirror);
      if (state.version !== undefined && state.version !== applied?.version) {
        await kind.apply(this.#o.redis, this.#store.keys.data(mirror, state.version), state);
        this.#o.logger.info(
          {
            event: 'directory.mirror.switched',
            mirror,
            version: state.version,
            from: applied?.version ?? null,
          },
          'mirror copy in service switched',
        );
        this.#applied.set(mirror, state);
        this.#o.onSwitch?.(mirror, state.version);
      }
      this.#applied.set(mirror, state);
    } catch (err) {
      // The copy in service stays; the next notification or poll tries again.
      this.#o.logger.warn(
        { event: 'directory.mirror.sync_failed', mirror, err: (err as Error).message },
        'cannot follow the mirror in Redis; the copy in service stays',
      );
    }
  }

  /** Mirrored CRL files this process has written (for tls.crlFiles-like loading). */
  crlFiles(): string[] {
    return [...this.#crlFiles.values()];
  }

  /** The facts of every mirror, read from Redis (what `mssgw directory status` prints). */
  async status(): Promise<MirrorStatus[]> {
    return readMirrorStatuses(this.#o.redis, this.#o.config, this.#o.clock.now());
  }

  /** Sources for the gauges mssgw_mirror_age_seconds, mssgw_mirror_entries, mssgw_crl_next_update_seconds. */
  metricSources(): Required<Pick<MetricSources, 'mirrors' | 'crlNextUpdates'>> {
    return {
      mirrors: () => {
        const now = this.#o.clock.now().getTime();
        return [...this.#applied.entries()].flatMap(([mirror, s]) =>
          s.version === undefined
            ? []
            : [{ mirror, entries: s.entries ?? 0, ageSeconds: mirrorAgeSeconds(s, now) ?? 0 }],
        );
      },
      crlNextUpdates: () => {
        const now = this.#o.clock.now().getTime();
        return [...this.#applied.entries()].flatMap(([mirror, s]) =>
          mirror.startsWith('crl:') && s.nextUpdate
            ? [{ crl: mirror.slice(4), seconds: (Date.parse(s.nextUpdate) - now) / 1000 }]
            : [],
        );
      },
    };
  }

  /** Stops scheduling, waits for a refresh in progress, closes the connections it made. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#poll) clearInterval(this.#poll);
    await this.#worker?.close().catch(() => undefined);
    await this.#queue?.close().catch(() => undefined);
    await Promise.all([...this.#syncing.values()]);
    for (const c of this.#connections.splice(0)) await c.quit().catch(() => c.disconnect());
  }
}
