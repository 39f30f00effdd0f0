import { EventEmitter } from 'node:events';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/logger.js';
import { reportErrors } from '../observability/index.js';
import { destinationsOf, jobIdOf, parseJobId } from './delivery-plan.js';
import type { DestinationWorker } from './destination-worker.js';
import { bodyOf, type GeneratedMessage } from './dsn-notifier.js';
import type { Spool } from './spool.js';
import { type DestinationState, LOCAL_DESTINATION, type SpoolEnvelope } from './spool-entry.js';

/** What a queue job carries: a reference to the spool entry and a summary for `mssgw queue list`. */
export interface DeliveryJobData {
  readonly spoolId: string;
  readonly destination: string;
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly size: number;
  readonly receivedAt: string;
  readonly messageId?: string;
}

export type QueueName = 'local' | 'relay';
export const QUEUE_NAMES: readonly QueueName[] = ['local', 'relay'];
const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'paused', 'prioritized'] as const;

export interface DeliveryQueueOptions {
  /** BullMQ key prefix, e.g. `mssgw:bull` (keys `mssgw:bull:relay:…`). */
  readonly prefix: string;
  readonly localConcurrency: number;
  readonly relayConcurrency: number;
  /** Whether this process works relay jobs (relay.enabled); jobs wait otherwise. */
  readonly relayEnabled: boolean;
  readonly lockSeconds: number;
  readonly reconcileSeconds: number;
  /** On stop, attempts in flight get this long to finish; then they are left to another process. */
  readonly drainSeconds: number;
}

export interface DeliveryQueueDeps {
  /** A new Redis connection for BullMQ (maxRetriesPerRequest null), one per call. */
  readonly connect: (name: string) => Redis;
  readonly spool: Spool;
  readonly worker: DestinationWorker;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly options: DeliveryQueueOptions;
}

/** A job as `mssgw queue list|show` presents it. */
export interface QueueEntry {
  readonly id: string;
  readonly queue: QueueName;
  readonly state: string;
  readonly data: DeliveryJobData;
  readonly nextAttemptAt?: string;
  /** From the spool: per-recipient progress (show only). */
  readonly progress?: DestinationState;
}

function queueOf(destination: string): QueueName {
  return destination === LOCAL_DESTINATION ? 'local' : 'relay';
}

/**
 * The durable delivery queue (ARCHITECTURE.md §5–6): one BullMQ job per message and destination
 * (`local`, or a recipient domain at another operator), referencing the spooled message. The spool
 * is the truth and the queue schedules: jobs have idempotent ids (`<spoolId>~<destination>`), so the
 * start-up and periodic reconciliation can add again whatever Redis lost without ever doubling a
 * job, and BullMQ's locks let several gateway processes work the same queues.
 */
export class DeliveryQueue extends EventEmitter {
  readonly #d: DeliveryQueueDeps;
  readonly #queues = new Map<QueueName, Queue<DeliveryJobData>>();
  readonly #workers: Worker<DeliveryJobData>[] = [];
  readonly #connections: Redis[] = [];
  #timer: NodeJS.Timeout | undefined;
  #reconciling: Promise<unknown> | undefined;
  #stopped = false;

  constructor(deps: DeliveryQueueDeps) {
    super();
    this.#d = deps;
    for (const name of QUEUE_NAMES) {
      const connection = this.#connect(`queue-${name}`);
      const queue = new Queue<DeliveryJobData>(name, {
        connection,
        prefix: deps.options.prefix,
        defaultJobOptions: { removeOnComplete: true, removeOnFail: false, attempts: 1 },
      });
      reportErrors(queue, deps.logger, { queue: name });
      this.#queues.set(name, queue);
    }
  }

  #connect(name: string): Redis {
    const c = this.#d.connect(name);
    this.#connections.push(c);
    return c;
  }

  #queue(name: QueueName): Queue<DeliveryJobData> {
    return this.#queues.get(name)!;
  }

  /** Reconciles with the spool, then starts the workers and the periodic reconciliation. */
  async start(): Promise<{ entries: number; added: number; removedUncommitted: number }> {
    const first = await this.reconcile();
    const { options } = this.#d;
    const workerOptions = {
      prefix: options.prefix,
      lockDuration: options.lockSeconds * 1000,
      stalledInterval: options.lockSeconds * 1000,
      // A job whose worker died is taken up again; only a job that kills workers over and over
      // (it should not exist: the processor catches everything) is parked as failed.
      maxStalledCount: 20,
    };
    this.#workers.push(
      new Worker<DeliveryJobData>('local', (job, token) => this.#process(job, token), {
        ...workerOptions,
        connection: this.#connect('worker-local'),
        concurrency: options.localConcurrency,
      }),
    );
    if (options.relayEnabled) {
      this.#workers.push(
        new Worker<DeliveryJobData>('relay', (job, token) => this.#process(job, token), {
          ...workerOptions,
          connection: this.#connect('worker-relay'),
          concurrency: options.relayConcurrency,
        }),
      );
    }
    // Connected before start returns: a stop right after start (a listener that cannot bind) must
    // not close connections under commands BullMQ is still issuing to set itself up.
    await Promise.all([...this.#workers, ...this.#queues.values()].map((q) => q.waitUntilReady()));
    for (const w of this.#workers)
      w.on('error', (err) =>
        this.#d.logger.warn({ event: 'queue.worker_error', err: err.message }, 'queue worker error'),
      );
    // Redis came back (restart, failover): what it lost is added again from the spool.
    const commands = this.#connections[0]!;
    let wasDown = false;
    commands.on('close', () => (wasDown = true));
    commands.on('ready', () => {
      if (!wasDown) return;
      wasDown = false;
      this.reconcileSoon();
    });
    this.#timer = setInterval(() => this.reconcileSoon(), options.reconcileSeconds * 1000);
    this.#timer.unref();
    return first;
  }

  /** Runs a reconciliation unless one is running; errors are logged. */
  reconcileSoon(): void {
    if (this.#stopped || this.#reconciling) return;
    this.#reconciling = this.reconcile()
      .catch((err: unknown) =>
        this.#d.logger.warn(
          { event: 'queue.reconcile_failed', err: (err as Error).message },
          'queue reconciliation failed; will retry',
        ),
      )
      .finally(() => (this.#reconciling = undefined));
  }

  /**
   * Sweeps uncommitted spool files, then makes sure every destination of every committed entry that
   * is not final has its job: added when missing (with its next attempt time), retried when parked
   * as failed. Idempotent.
   */
  async reconcile(): Promise<{ entries: number; added: number; removedUncommitted: number }> {
    const { spool, clock, logger } = this.#d;
    const { removedUncommitted } = await spool.sweep(clock.now());
    const ids = await spool.committedIds();
    let added = 0;
    for (const id of ids) {
      const envelope = await spool.readEnvelope(id);
      if (!envelope) continue;
      for (const destination of destinationsOf(envelope).keys()) {
        const state = await spool.readState(id, destination);
        if (state?.final) continue;
        const due = state?.nextAttemptAt ? Date.parse(state.nextAttemptAt) - clock.now().getTime() : 0;
        if (await this.#ensureJob(envelope, destination, Math.max(0, due))) added += 1;
      }
    }
    if (ids.length > 0 || removedUncommitted > 0)
      logger.info(
        { event: 'spool.recovered', entries: ids.length, added, removedUncommitted },
        'spool reconciled with the queue',
      );
    return { entries: ids.length, added, removedUncommitted };
  }

  async #ensureJob(envelope: SpoolEnvelope, destination: string, delay: number): Promise<boolean> {
    const queue = this.#queue(queueOf(destination));
    const id = jobIdOf(envelope.id, destination);
    const existing = await queue.getJob(id);
    if (existing?.data?.spoolId === envelope.id) {
      if (await existing.isFailed()) await existing.retry('failed');
      return false;
    }
    // Redis lost the job, or kept only a fragment of it (a script touched a key it had lost).
    if (existing) await existing.remove().catch(() => undefined);
    await queue.add(destination, this.#dataOf(envelope, destination), {
      jobId: id,
      ...(delay > 0 ? { delay } : {}),
    });
    return true;
  }

  #dataOf(envelope: SpoolEnvelope, destination: string): DeliveryJobData {
    return {
      spoolId: envelope.id,
      destination,
      sender: envelope.mailFrom,
      recipients: destinationsOf(envelope)
        .get(destination)!
        .map((r) => r.address),
      size: envelope.size,
      receivedAt: envelope.receivedAt,
      ...(envelope.messageId ? { messageId: envelope.messageId } : {}),
    };
  }

  /**
   * Queues a committed entry: one job per destination. Never throws: the entry is durable in the
   * spool already, and reconciliation adds what could not be added now (Redis down).
   */
  async enqueue(envelope: SpoolEnvelope): Promise<void> {
    try {
      for (const destination of destinationsOf(envelope).keys()) {
        await this.#queue(queueOf(destination)).add(destination, this.#dataOf(envelope, destination), {
          jobId: jobIdOf(envelope.id, destination),
        });
      }
    } catch (err) {
      this.#d.logger.warn(
        { event: 'queue.enqueue_failed', spoolId: envelope.id, err: (err as Error).message },
        'queue unavailable; the spooled message will be queued by reconciliation',
      );
      this.reconcileSoon();
    }
  }

  /** Writes a message of our own (DSN, notice) to the spool, commits it and queues it. */
  async inject(message: GeneratedMessage): Promise<SpoolEnvelope> {
    const { spool, clock } = this.#d;
    const now = clock.now();
    const id = spool.newId(now);
    const size = await spool.writeMessage(id, Buffer.alloc(0), bodyOf(message.raw));
    const envelope: SpoolEnvelope = {
      id,
      version: 1,
      receivedAt: now.toISOString(),
      mailFrom: message.from,
      channel: 'internal',
      size,
      ...(message.messageId ? { messageId: message.messageId } : {}),
      peer: { address: 'internal' },
      recipients: [{ address: message.to, route: message.route, state: 'pending', attempts: 0 }],
      nextAttemptAt: now.toISOString(),
    };
    await spool.commit(envelope);
    await this.enqueue(envelope);
    return envelope;
  }

  async #process(job: Job<DeliveryJobData>, token: string | undefined): Promise<void> {
    // The id says what to deliver even if Redis kept only part of the job.
    const ref = job.id ? parseJobId(job.id) : undefined;
    if (!ref) return;
    const { spoolId, destination } = ref;
    let retryAt: Date;
    try {
      const outcome = await this.#d.worker.work(spoolId, destination);
      if (outcome.kind === 'done') return;
      retryAt = outcome.at;
    } catch (err) {
      // Our own failure (spool unreadable, disk full): never lose the job, try again later.
      this.#d.logger.error(
        { event: 'queue.job_error', jobId: job.id, err: (err as Error).message },
        'delivery job failed; retrying later',
      );
      retryAt = new Date(this.#d.clock.now().getTime() + 30_000);
    }
    await job.moveToDelayed(retryAt.getTime(), token);
    throw new DelayedError();
  }

  /** Job counts by queue and state, for the metrics. */
  async counts(): Promise<Array<{ queue: string; state: string; count: number }>> {
    const rows: Array<{ queue: string; state: string; count: number }> = [];
    for (const name of QUEUE_NAMES) {
      const counts = await this.#queue(name).getJobCounts(...JOB_STATES);
      for (const state of JOB_STATES) rows.push({ queue: name, state, count: counts[state] ?? 0 });
    }
    return rows;
  }

  /** Jobs in the given states (default all but completed), oldest first, at most `limit`. */
  async list(options: { states?: readonly string[]; limit?: number } = {}): Promise<QueueEntry[]> {
    const states = (options.states ?? ['active', 'waiting', 'delayed', 'failed']) as Array<
      'active' | 'waiting' | 'delayed' | 'failed'
    >;
    const limit = options.limit ?? 1000;
    const out: QueueEntry[] = [];
    for (const name of QUEUE_NAMES) {
      for (const state of states) {
        const jobs = await this.#queue(name).getJobs([state], 0, limit - 1, true);
        for (const job of jobs) if (job?.id) out.push(this.#entryOf(name, state, job));
      }
    }
    out.sort((a, b) => a.data.receivedAt.localeCompare(b.data.receivedAt));
    return out.slice(0, limit);
  }

  #entryOf(queue: QueueName, state: string, job: Job<DeliveryJobData>): QueueEntry {
    const next = state === 'delayed' ? job.timestamp + job.delay : undefined;
    return {
      id: job.id!,
      queue,
      state,
      data: job.data,
      ...(next === undefined ? {} : { nextAttemptAt: new Date(next).toISOString() }),
    };
  }

  async #find(id: string): Promise<{ queue: QueueName; job: Job<DeliveryJobData> }> {
    const parsed = parseJobId(id);
    if (!parsed) throw new GatewayError('QUEUE_JOB_NOT_FOUND', `no queue job ${id}`, { id });
    const queue = queueOf(parsed.destination);
    const job = await this.#queue(queue).getJob(id);
    if (!job) throw new GatewayError('QUEUE_JOB_NOT_FOUND', `no queue job ${id}`, { id });
    return { queue, job };
  }

  async show(id: string): Promise<QueueEntry> {
    const { queue, job } = await this.#find(id);
    const state = await job.getState();
    const progress = await this.#d.spool.readState(job.data.spoolId, job.data.destination);
    return { ...this.#entryOf(queue, state, job), ...(progress ? { progress } : {}) };
  }

  /** Attempts a waiting job now (delayed or parked as failed). */
  async retry(id: string): Promise<QueueEntry> {
    const { job } = await this.#find(id);
    const state = await job.getState();
    if (state === 'delayed') await job.promote();
    else if (state === 'failed') await job.retry('failed');
    else if (state === 'active')
      throw new GatewayError('QUEUE_JOB_BUSY', `job ${id} is being attempted right now`, { id });
    return this.show(id);
  }

  /** Moves every delayed local job forward (the store is back). */
  async retryLocalNow(): Promise<number> {
    const jobs = await this.#queue('local').getJobs(['delayed'], 0, -1);
    let n = 0;
    for (const job of jobs) {
      await job?.promote().then(
        () => (n += 1),
        () => undefined, // taken meanwhile
      );
    }
    return n;
  }

  /** Removes a job that is not being worked on; the caller settles the spool entry. */
  async remove(id: string): Promise<DeliveryJobData> {
    const { job } = await this.#find(id);
    if ((await job.getState()) === 'active')
      throw new GatewayError('QUEUE_JOB_BUSY', `job ${id} is being attempted right now`, { id });
    const lock = await job.remove().then(
      () => true,
      () => false,
    );
    if (!lock) throw new GatewayError('QUEUE_JOB_BUSY', `job ${id} is being attempted right now`, { id });
    return job.data;
  }

  /** Stops taking jobs, waits for jobs in flight (they finish or are rescheduled), closes Redis. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearInterval(this.#timer);
    // Attempts in flight may finish (or reschedule themselves); past the deadline they are
    // abandoned, and their jobs go back to the queue when their lock expires (another node, or the
    // next start, takes them).
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      Promise.all(this.#workers.map((w) => w.close())).then(() => true),
      new Promise<boolean>(
        (resolve) => (timer = setTimeout(() => resolve(false), this.#d.options.drainSeconds * 1000)),
      ),
    ]);
    clearTimeout(timer);
    if (!drained) {
      this.#d.logger.warn(
        { event: 'queue.drain_timeout' },
        'attempts still running at the drain deadline; left to the queue',
      );
      await Promise.all(this.#workers.map((w) => w.close(true)));
    }
    await this.#reconciling;
    await Promise.all([...this.#queues.values()].map((q) => q.close()));
    await Promise.all(
      this.#connections.map((c) =>
        c.quit().then(
          () => undefined,
          () => c.disconnect(),
        ),
      ),
    );
  }
}
