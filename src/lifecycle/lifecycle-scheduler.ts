import { Queue, Worker, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { GatewayError, toGatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { reportErrors } from '../observability/index.js';
import { dailyCron } from './lifecycle-time.js';
import type { RunSummary } from './lifecycle-runner.js';

export const LIFECYCLE_QUEUE = 'lifecycle';
/** The one job scheduler of the daily run, shared by every gateway process (upserted at start). */
export const LIFECYCLE_SCHEDULER_ID = 'lifecycle-daily';

export interface LifecycleSchedulerOptions {
  /** BullMQ needs `maxRetriesPerRequest: null` (createRedisClient option). */
  readonly connection: Redis;
  /** BullMQ key prefix, e.g. `<redis.prefix>bull`. */
  readonly bullPrefix: string;
  readonly config: Pick<Config['lifecycle'], 'enabled' | 'runAt' | 'timeZone'>;
  readonly runner: { runOnce(signal?: AbortSignal): Promise<RunSummary> };
  readonly logger: Logger;
  /**
   * BullMQ job lock: a killed process's job is handed to another worker after about this long plus
   * `stalledIntervalMs`. Keep it equal to the runner's lease (`lockTtlMs`). Default 60 s.
   */
  readonly lockDurationMs?: number;
  /** How often each worker looks for stalled jobs. Default 30 s. */
  readonly stalledIntervalMs?: number;
}

// A run that fails (lease held elsewhere, Redis away, gateway stopping) is tried again over about
// half an hour (1, 2, 4, 8 and 16 minutes later), in whichever process is free.
const JOB_OPTIONS: JobsOptions = {
  attempts: 6,
  backoff: { type: 'exponential', delay: 60_000 },
  removeOnComplete: 60,
  removeOnFail: 200,
};

/**
 * Runs the lifecycle job every day at `lifecycle.runAt` (in `lifecycle.timeZone`) through a BullMQ
 * job scheduler: each gateway process upserts the same scheduler and runs a worker, BullMQ gives
 * each tick to one of them, and hands the job of a process killed mid-run to another (stalled job),
 * which takes the run up where it stopped (LifecycleRunner).
 */
export class LifecycleScheduler {
  readonly #o: LifecycleSchedulerOptions;
  #queue: Queue | undefined;
  #worker: Worker | undefined;
  #stopping = new AbortController();

  constructor(options: LifecycleSchedulerOptions) {
    this.#o = options;
  }

  async start(): Promise<void> {
    const { connection, bullPrefix, config, logger } = this.#o;
    this.#queue = new Queue(LIFECYCLE_QUEUE, { connection, prefix: bullPrefix });
    reportErrors(this.#queue, logger, { queue: LIFECYCLE_QUEUE });
    if (!config.enabled) {
      // Disabled here: no process should keep running it on a schedule left by an earlier start.
      await this.#queue.removeJobScheduler(LIFECYCLE_SCHEDULER_ID);
      logger.info({ event: 'lifecycle.scheduler.disabled' }, 'lifecycle job disabled (lifecycle.enabled)');
      return;
    }
    await this.#queue.upsertJobScheduler(
      LIFECYCLE_SCHEDULER_ID,
      { pattern: dailyCron(config.runAt), tz: config.timeZone },
      { name: 'daily-run', opts: JOB_OPTIONS },
    );
    this.#worker = new Worker(LIFECYCLE_QUEUE, () => this.#o.runner.runOnce(this.#stopping.signal), {
      connection,
      prefix: bullPrefix,
      concurrency: 1,
      lockDuration: this.#o.lockDurationMs ?? 60_000,
      stalledInterval: this.#o.stalledIntervalMs ?? 30_000,
      maxStalledCount: 2,
    });
    this.#worker.on('failed', (job, err) => {
      logger.warn(
        {
          event: 'lifecycle.job.failed',
          job: job?.id,
          attempts: job?.attemptsMade,
          err: toGatewayError(err).message,
        },
        'lifecycle job failed; BullMQ retries it',
      );
    });
    this.#worker.on('error', (err) => {
      logger.warn({ event: 'lifecycle.worker.error', err: err.message }, 'lifecycle worker error');
    });
    logger.info(
      { event: 'lifecycle.scheduler.started', runAt: config.runAt, timeZone: config.timeZone },
      'lifecycle job scheduled daily',
    );
  }

  /** Queues a run now (operator request, tests); returns the BullMQ job id. */
  async trigger(): Promise<string> {
    if (!this.#queue) {
      // The message stays the generic one the admin API has always shown for this.
      throw new GatewayError('INTERNAL', undefined, { reason: 'lifecycle scheduler not started' });
    }
    const job = await this.#queue.add('run-now', {}, JOB_OPTIONS);
    return job.id ?? '';
  }

  /** The daily schedule as BullMQ holds it (pattern, time zone, next run), or undefined. */
  async schedule(): Promise<{ pattern?: string; tz?: string; next?: number } | undefined> {
    const scheduler = await this.#queue?.getJobScheduler(LIFECYCLE_SCHEDULER_ID);
    if (!scheduler) return undefined;
    return {
      ...(scheduler.pattern ? { pattern: scheduler.pattern } : {}),
      ...(scheduler.tz ? { tz: scheduler.tz } : {}),
      ...(scheduler.next === undefined ? {} : { next: scheduler.next }),
    };
  }

  /**
   * Stops taking jobs. A run in progress stops after its current step; its job fails and BullMQ
   * retries it (here or in another process), which takes the run up where it stopped.
   */
  async stop(): Promise<void> {
    this.#stopping.abort();
    await this.#worker?.close();
    await this.#queue?.close();
    this.#worker = undefined;
    this.#queue = undefined;
  }
}
