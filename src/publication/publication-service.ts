import { Queue, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { addressKey, type Clock } from '../shared/index.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import { reportErrors } from '../observability/index.js';
import type { Bal, BalChange, BalObserver } from '../registry/index.js';
import { computeDrift, type DriftReport, type ExtractionView } from './drift.js';
import { desiredFor } from './publication-decision.js';
import { FIELD, PublicationStore, publicState } from './publication-store.js';
import type { PublicationState, PublicationStateName, UnpublishHold } from './publication-state.js';
import type { Publisher } from './publisher.js';
import {
  PublicationWork,
  type BalSource,
  type PublicationObserver,
  type WorkRetry,
} from './publication-work.js';

export interface PublicationSettings {
  /** Mailboxes worked at once by this process. */
  readonly concurrency: number;
  /** Directory calls per second at most, across every process (BullMQ rate limiter). */
  readonly maxCallsPerSecond: number;
  /** Backoff of temporary failures: initial delay, doubled each attempt up to the maximum. */
  readonly retryInitialSeconds: number;
  readonly retryMaxSeconds: number;
  /** Attempts of one change before the mailbox is marked failed. */
  readonly maxAttempts: number;
  /** Longest directory call; the job lock outlasts it. */
  readonly timeoutSeconds: number;
}

export interface PublicationServiceOptions {
  /** Client for the state records (the registry's shared client fits). */
  readonly redis: Redis;
  /**
   * A new Redis connection for BullMQ (`maxRetriesPerRequest: null`: its blocking commands wait out
   * reconnections), called once; the service closes it on stop.
   */
  readonly connect: (name: string) => Redis;
  /** Configuration `redis.prefix`: the state records live under it. */
  readonly prefix: string;
  /** BullMQ key prefix; default `<prefix>bull` (keys `<prefix>bull:publication:…`). */
  readonly bullPrefix?: string;
  readonly bals: BalSource;
  readonly publisher: Publisher;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly settings: PublicationSettings;
  readonly observer?: PublicationObserver;
  /** Run a worker in this process (default true); false: changes are only queued here. */
  readonly worker?: boolean;
}

export const PUBLICATION_QUEUE = 'publication';
const JOB_NAME = 'sync';

interface SyncJob {
  readonly address: string;
}

/**
 * Publication of our mailboxes in the national directory (issue #5, ARCHITECTURE.md §1). Every
 * change of a mailbox (the registry tells it, BalObserver) and every hold (unpublish/republish,
 * issue #6) bumps the mailbox's `desired` counter and queues one BullMQ job whose id is the
 * address: two changes of one mailbox never run at once, and the worker reads the mailbox when it
 * runs, so the latest state wins. The worker (publication-work.ts) writes a state only after the
 * directory answered; temporary failures are retried with capped exponential backoff.
 */
export class PublicationService implements BalObserver {
  readonly #o: PublicationServiceOptions;
  readonly #store: PublicationStore;
  readonly #connection: Redis;
  readonly #bullPrefix: string;
  readonly #queue: Queue<SyncJob>;
  readonly #work: PublicationWork;
  #worker: Worker<SyncJob> | undefined;

  constructor(options: PublicationServiceOptions) {
    this.#o = options;
    this.#store = new PublicationStore({ redis: options.redis, prefix: options.prefix });
    this.#connection = options.connect('publication');
    this.#bullPrefix = options.bullPrefix ?? `${options.prefix}bull`;
    this.#queue = new Queue<SyncJob>(PUBLICATION_QUEUE, {
      connection: this.#connection,
      prefix: this.#bullPrefix,
    });
    reportErrors(this.#queue, options.logger, { queue: PUBLICATION_QUEUE });
    this.#work = new PublicationWork({
      store: this.#store,
      bals: options.bals,
      publisher: options.publisher,
      clock: options.clock,
      journal: options.journal,
      logger: options.logger,
      ...(options.observer === undefined ? {} : { observer: options.observer }),
    });
  }

  /** Starts this process's worker (unless `worker: false`). */
  async start(): Promise<void> {
    if (this.#o.worker === false || this.#worker) return;
    const s = this.#o.settings;
    const worker = new Worker<SyncJob>(PUBLICATION_QUEUE, (job) => this.#process(job), {
      connection: this.#connection,
      prefix: this.#bullPrefix,
      concurrency: s.concurrency,
      limiter: { max: s.maxCallsPerSecond, duration: 1000 },
      // A job holds its lock through a whole directory call (and the fallback insert of a replace).
      lockDuration: Math.max(30_000, 3 * s.timeoutSeconds * 1000),
      settings: { backoffStrategy: (attemptsMade) => backoffMs(s, attemptsMade) },
      autorun: false,
    });
    worker.on('error', (err) =>
      this.#o.logger.error(
        { event: 'publication.worker_error', err: err.message },
        'publication worker error',
      ),
    );
    // A change that arrived while its mailbox's job was finishing could not queue another job
    // under the same id: queue it now. (Directory failures end the job normally once recorded; a
    // retry keeps the job, which reads the latest change when it runs.)
    worker.on('completed', (job) => void this.#catchUpOne(job.data.address));
    // Only an unexpected error (Redis lost mid-job) fails a job for good: not requeued at once, so a
    // persistent fault cannot spin; the next change of the mailbox or catchUp() takes it up again.
    worker.on('failed', (job, err) => {
      if (job && job.attemptsMade >= (job.opts.attempts ?? 1)) {
        this.#o.logger.error(
          { event: 'publication.job_failed', address: job.data.address, err: err.message },
          'publication job failed; the mailbox is worked again at its next change or at catchUp()',
        );
      }
    });
    this.#worker = worker;
    void worker
      .run()
      .catch((err: unknown) =>
        this.#o.logger.error(
          { event: 'publication.worker_error', err: String(err) },
          'publication worker stopped',
        ),
      );
    await worker.waitUntilReady();
  }

  /** Stops the worker (an active call finishes first), closes the queue and its connection. */
  async stop(): Promise<void> {
    await this.#worker?.close();
    this.#worker = undefined;
    await this.#queue.close();
    await this.#connection.quit().catch(() => this.#connection.disconnect());
  }

  /** BalObserver: every committed change of a mailbox. Never throws (the registry change is done). */
  async balChanged(change: BalChange): Promise<void> {
    try {
      await this.#request(change.bal.address, change.bal.type);
    } catch (err) {
      // The next start's catchUp() finds the mailbox without a record, or with work owed.
      this.#o.logger.error(
        {
          event: 'publication.request_failed',
          address: change.bal.address,
          kind: change.kind,
          err: String(err),
        },
        'publication of a mailbox change could not be queued',
      );
    }
  }

  /**
   * Takes a mailbox out of the directory (issue #6: `inactive` after 45 days unused; `operator` by
   * hand). Only `republish` with the same reason lifts the hold.
   */
  async unpublish(address: string, reason: UnpublishHold): Promise<PublicationState> {
    const bal = await this.#existing(address);
    return this.#request(bal.address, bal.type, { add: reason });
  }

  /**
   * Lifts a hold (`inactive` by default: the mailbox is used again). The mailbox is published again
   * only if nothing else keeps it out: a red-listed, suspended or otherwise held one stays out.
   */
  async republish(address: string, reason: UnpublishHold = 'inactive'): Promise<PublicationState> {
    const bal = await this.#existing(address);
    return this.#request(bal.address, bal.type, { remove: reason });
  }

  /** The publication state of a mailbox; null when it has none yet. */
  async state(address: string): Promise<PublicationState | null> {
    const record = await this.#store.read(addressKey(address));
    return record && publicState(record);
  }

  /** States of many mailboxes in one round trip, in order (null: none yet); for the lifecycle run. */
  async statesOf(addresses: readonly string[]): Promise<Array<PublicationState | null>> {
    const records = await this.#store.readMany(addresses.map(addressKey));
    return records.map((r) => r && publicState(r));
  }

  countByState(): Promise<Record<PublicationStateName, number>> {
    return this.#store.counts();
  }

  /**
   * Queues every mailbox with work owed: no record yet (publication just enabled, or a lost
   * request) or a change not yet settled (a job lost with Redis data). Call once after start.
   * Returns how many were queued.
   */
  async catchUp(): Promise<number> {
    let queued = 0;
    let cursor: string | undefined;
    do {
      const page = await this.#o.bals.list({ limit: 500, ...(cursor === undefined ? {} : { cursor }) });
      const versions = await this.#store.versions(page.items.map((b) => b.address));
      for (const [i, bal] of page.items.entries()) {
        const v = versions[i];
        if (v === null || v === undefined) {
          await this.#request(bal.address, bal.type);
          queued += 1;
        } else if (v.desired > v.applied) {
          await this.#enqueue(bal.address);
          queued += 1;
        }
      }
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    if (queued > 0) this.#o.logger.info({ event: 'publication.catch_up', queued }, 'publication work queued');
    return queued;
  }

  /**
   * Compares what we believe published with the extraction in service, stores the report (for
   * `mssgw directory drift` and the drift gauge) and journals its counts.
   */
  async reconcile(extraction: ExtractionView, asOf?: Date): Promise<DriftReport> {
    const now = this.#o.clock.now();
    const report = await computeDrift(this.#store, extraction, {
      now,
      ...(asOf === undefined ? {} : { asOf }),
    });
    await this.#store.saveDrift(JSON.stringify(report));
    const counts = {
      publishedMissing: report.publishedMissing.count,
      unpublishedPresent: report.unpublishedPresent.count,
    };
    this.#o.journal.record({ event: 'publication.drift', ...counts, compared: report.compared });
    const drifted = counts.publishedMissing + counts.unpublishedPresent > 0;
    this.#o.logger[drifted ? 'warn' : 'info'](
      { event: 'publication.drift', ...counts },
      drifted ? 'the national directory differs from our publication state' : 'no publication drift',
    );
    return report;
  }

  async lastDrift(): Promise<DriftReport | null> {
    const json = await this.#store.loadDrift();
    return json === null ? null : (JSON.parse(json) as DriftReport);
  }

  async #existing(address: string): Promise<Bal> {
    const bal = await this.#o.bals.get(address);
    if (bal) return bal;
    const normalised = addressKey(address);
    throw new GatewayError('BAL_NOT_FOUND', `no mailbox ${normalised} in the registry`, {
      address: normalised,
    });
  }

  /**
   * Records that a change is owed (`pending` unless the mailbox already is where the change heads)
   * and queues the job. The target shown is computed from the mailbox now; the worker decides again
   * when it runs.
   */
  async #request(
    address: string,
    type: Bal['type'],
    hold: { add?: UnpublishHold; remove?: UnpublishHold } = {},
  ): Promise<PublicationState> {
    const now = this.#o.clock.now();
    const bal = await this.#o.bals.get(address);
    const holds = new Set((await this.#store.read(address))?.holds ?? []);
    if (hold.add !== undefined) holds.add(hold.add);
    if (hold.remove !== undefined) holds.delete(hold.remove);
    const desired = desiredFor(bal, holds);
    const record = await this.#store.write(address, now, {
      create: true,
      bump: true,
      towards: desired.target,
      set: {
        type,
        target: desired.target,
        attempts: '0',
        ...(hold.add === undefined ? {} : { [FIELD.hold(hold.add)]: '1' }),
        ...(desired.target === 'unpublished' ? { reason: desired.reason } : {}),
      },
      del: [
        ...(hold.remove === undefined ? [] : [FIELD.hold(hold.remove)]),
        ...(desired.target === 'published' ? ['reason'] : []),
      ],
    });
    await this.#enqueue(address);
    if (!record) throw new GatewayError('INTERNAL', `publication record of ${address} was not written`);
    return publicState(record);
  }

  async #enqueue(address: string): Promise<void> {
    const s = this.#o.settings;
    await this.#queue.add(
      JOB_NAME,
      { address },
      {
        // One job per mailbox (addresses hold no ':', as BullMQ custom ids require).
        jobId: address,
        attempts: s.maxAttempts,
        backoff: { type: 'capped-exponential' },
        removeOnComplete: true,
        removeOnFail: true,
      },
    );
  }

  async #catchUpOne(address: string): Promise<void> {
    try {
      const [v] = await this.#store.versions([address]);
      if (v && v.desired > v.applied) await this.#enqueue(address);
    } catch (err) {
      this.#o.logger.error(
        { event: 'publication.requeue_failed', address, err: String(err) },
        'publication work could not be queued again; catchUp() at the next start will',
      );
    }
  }

  #process(job: Job<SyncJob>): Promise<void> {
    const retry: WorkRetry = {
      attempt: job.attemptsMade + 1,
      last: job.attemptsMade + 1 >= (job.opts.attempts ?? 1),
    };
    return this.#work.run(job.data.address, retry);
  }
}

/** Capped exponential backoff with ±20 % jitter, so retries of many mailboxes spread out. */
export function backoffMs(
  settings: Pick<PublicationSettings, 'retryInitialSeconds' | 'retryMaxSeconds'>,
  attemptsMade: number,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    settings.retryInitialSeconds * 2 ** Math.max(0, attemptsMade - 1),
    settings.retryMaxSeconds,
  );
  return Math.round(base * 1000 * (0.8 + 0.4 * random()));
}
