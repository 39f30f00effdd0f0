import { EventEmitter } from 'node:events';
import { DelayedError, type Job, Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import { GatewayError } from '../errors/index.js';
import { type Logger, reportErrors } from '../observability/index.js';
import { destinationsOf, jobIdOf, parseJobId } from './delivery-plan.js';
import type { DestinationWorker } from './destination-worker.js';
import { bodyOf, type GeneratedMessage } from './dsn-notifier.js';
import { HandOffSlots } from './handoff-slots.js';
import { HandOffWaitList } from './handoff-wait-list.js';
import { indicatorHeadersOf, scanHeaders } from './message-format.js';
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

/**
 * An attempt handed off right after commit gets its safety-net job only once it has run this long
 * (most end well before: no Redis command at all for them).
 */
const NET_AFTER_MS = 2_000;
export const QUEUE_NAMES: readonly QueueName[] = ['local', 'relay'];

/** A node id: a host name's characters, so it fits a BullMQ queue name and a metric label. */
export const NODE_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * The BullMQ queue of one node (ARCHITECTURE.md §6, each node owns its spool): `local@gw-0`. Only the
 * node that holds a message in its spool has its jobs, so no other node can take (and wrongly
 * complete) them; a node that is down keeps its jobs waiting in its queues, visible to the others.
 */
export function nodeQueueName(queue: QueueName, node: string): string {
  return `${queue}@${node}`;
}
const JOB_STATES = ['waiting', 'active', 'delayed', 'failed', 'paused', 'prioritized'] as const;

export interface DeliveryQueueOptions {
  /** BullMQ key prefix, e.g. `mssgw:bull` (keys `mssgw:bull:relay@gw-0:…`). */
  readonly prefix: string;
  /** This node's id (node.id): the owner of the spool, and of the queues named after it. */
  readonly nodeId: string;
  readonly localConcurrency: number;
  readonly relayConcurrency: number;
  /**
   * Relay attempts handed off at once to one domain (relay.maxConnectionsPerDestination, the
   * relay's own limit of connections to it); past it, a message goes through its relay queue.
   */
  readonly relayPerDestination: number;
  /** Whether this process works relay jobs (relay.enabled); jobs wait otherwise. */
  readonly relayEnabled: boolean;
  /**
   * Destinations that wait in memory for a hand-off slot at most (delivery.handOffWaitEntries), and
   * the bytes of the messages they refer to (delivery.handOffWaitBytes); past either, they are queued.
   */
  readonly handOffWait: { readonly entries: number; readonly bytes: number };
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
  /** The node whose spool holds the message; only it works the job. */
  readonly node: string;
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
  /** Queues by BullMQ name: this node's, and other nodes' opened for listing and counting. */
  readonly #queues = new Map<string, Queue<DeliveryJobData>>();
  readonly #workers: Worker<DeliveryJobData>[] = [];
  readonly #connections: Redis[] = [];
  #timer: NodeJS.Timeout | undefined;
  #reconciling: Promise<unknown> | undefined;
  #stopped = false;
  #started = false;
  /**
   * Attempts started right after commit, in this process: local ones bounded by localConcurrency,
   * relay ones by relayConcurrency and, per domain, by relayPerDestination (#slots).
   */
  readonly #handoffs = new Set<Promise<void>>();
  readonly #slots: HandOffSlots;
  /** Destinations committed while their slots were all taken, by job id, served as slots free up. */
  readonly #waiting: HandOffWaitList<SpoolEnvelope>;
  /**
   * Every attempt running in this process (hand-offs and queue jobs), up to its state being written
   * to the spool: what a stop waits for, Redis or not (see drainAttempts).
   */
  readonly #attempts = new Set<Promise<unknown>>();
  /** When the stop began: the drain deadline counts from there. */
  #stopAt: number | undefined;
  /**
   * The outcome of each hand-off in progress, by job id, until its job is settled: when to retry,
   * or undefined once done. The safety-net job taken meanwhile adopts it instead of attempting.
   */
  readonly #handoffOutcomes = new Map<string, Promise<Date | undefined>>();

  constructor(deps: DeliveryQueueDeps) {
    super();
    this.#d = deps;
    const { options } = deps;
    this.#slots = new HandOffSlots({
      local: options.localConcurrency,
      relay: options.relayConcurrency,
      relayPerDestination: options.relayPerDestination,
      relayEnabled: options.relayEnabled,
    });
    this.#waiting = new HandOffWaitList(options.handOffWait);
    if (!NODE_ID.test(deps.options.nodeId))
      throw new GatewayError(
        'CONFIG_INVALID',
        `node.id ${JSON.stringify(deps.options.nodeId)} is not usable`,
        {
          key: 'node.id',
        },
      );
    for (const name of QUEUE_NAMES) this.#queueOfNode(name, deps.options.nodeId);
  }

  get nodeId(): string {
    return this.#d.options.nodeId;
  }

  #queueOfNode(queue: QueueName, node: string): Queue<DeliveryJobData> {
    const name = nodeQueueName(queue, node);
    let q = this.#queues.get(name);
    if (!q) {
      // This node's queues get their own connection; other nodes' share the first one (rarely used).
      const own = node === this.#d.options.nodeId;
      const connection =
        own || this.#connections.length === 0 ? this.#connect(`queue-${name}`) : this.#connections[0]!;
      q = new Queue<DeliveryJobData>(name, {
        connection,
        prefix: this.#d.options.prefix,
        defaultJobOptions: { removeOnComplete: true, removeOnFail: false, attempts: 1 },
      });
      reportErrors(q, this.#d.logger, { queue: name });
      this.#queues.set(name, q);
    }
    return q;
  }

  /** The Redis hash of known nodes: node id → last time it was seen working (ISO). */
  get #nodesKey(): string {
    return `${this.#d.options.prefix}:nodes`;
  }

  /** Says this node is alive; every node's queues are listed from this set. */
  async #heartbeat(): Promise<void> {
    await this.#connections[0]!.hset(
      this.#nodesKey,
      this.#d.options.nodeId,
      this.#d.clock.now().toISOString(),
    );
  }

  /** Every node known to the cluster (itself included), with when each was last seen. */
  async nodes(): Promise<Array<{ node: string; lastSeen: string }>> {
    const all = await this.#connections[0]!.hgetall(this.#nodesKey);
    if (!(this.#d.options.nodeId in all)) all[this.#d.options.nodeId] = this.#d.clock.now().toISOString();
    return Object.entries(all)
      .filter(([node]) => NODE_ID.test(node))
      .map(([node, lastSeen]) => ({ node, lastSeen }))
      .sort((a, b) => a.node.localeCompare(b.node));
  }

  #connect(name: string): Redis {
    const c = this.#d.connect(name);
    this.#connections.push(c);
    return c;
  }

  /** This node's queue. */
  #queue(name: QueueName): Queue<DeliveryJobData> {
    return this.#queueOfNode(name, this.#d.options.nodeId);
  }

  /** Reconciles with the spool, then starts the workers and the periodic reconciliation. */
  async start(): Promise<{
    entries: number;
    added: number;
    removedUncommitted: number;
    removedTemporary: number;
  }> {
    // What a killed process left half-written goes first: nothing refers to it.
    const { removedTemporary } = await this.#d.spool.sweepAtStart();
    if (removedTemporary > 0)
      this.#d.logger.info(
        { event: 'spool.temporary_swept', removedTemporary },
        'temporary spool files of an interrupted process removed',
      );
    const first = { ...(await this.reconcile({ promote: true })), removedTemporary };
    this.#started = true;
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
      new Worker<DeliveryJobData>(this.#queue('local').name, (job, token) => this.#process(job, token), {
        ...workerOptions,
        connection: this.#connect('worker-local'),
        concurrency: options.localConcurrency,
      }),
    );
    if (options.relayEnabled) {
      this.#workers.push(
        new Worker<DeliveryJobData>(this.#queue('relay').name, (job, token) => this.#process(job, token), {
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
  async reconcile(
    options: { readonly promote?: boolean } = {},
  ): Promise<{ entries: number; added: number; removedUncommitted: number }> {
    const { spool, clock, logger } = this.#d;
    await this.#heartbeat();
    const { removedUncommitted } = await spool.sweep(clock.now());
    const ids = await spool.committedIds();
    let added = 0;
    for (const id of ids) {
      const envelope = await spool.readEnvelope(id).catch((err: unknown) => {
        // One damaged entry (a disk fault) must not keep every other one from being queued.
        logger.error(
          { event: 'spool.entry_unreadable', spoolId: id, err: (err as Error).message },
          'spool entry unreadable; left in place for the operator',
        );
        return undefined;
      });
      if (!envelope) continue;
      for (const destination of destinationsOf(envelope).keys()) {
        // Waiting in memory for a hand-off slot: this process attempts it soon, no job needed.
        if (this.#waiting.has(jobIdOf(id, destination))) continue;
        const state = await spool.readState(id, destination);
        if (state?.final) continue;
        const due = state?.nextAttemptAt ? Date.parse(state.nextAttemptAt) - clock.now().getTime() : 0;
        if (await this.#ensureJob(envelope, destination, Math.max(0, due), options.promote === true))
          added += 1;
      }
    }
    if (ids.length > 0 || removedUncommitted > 0)
      logger.info(
        { event: 'spool.recovered', entries: ids.length, added, removedUncommitted },
        'spool reconciled with the queue',
      );
    return { entries: ids.length, added, removedUncommitted };
  }

  async #ensureJob(
    envelope: SpoolEnvelope,
    destination: string,
    delay: number,
    promote: boolean,
  ): Promise<boolean> {
    const queue = this.#queue(queueOf(destination));
    const id = jobIdOf(envelope.id, destination);
    const existing = await queue.getJob(id);
    if (existing?.data?.spoolId === envelope.id) {
      if (await existing.isFailed()) await existing.retry('failed');
      // At start-up, an entry due now whose job waits as a hand-off's safety net (the process died
      // during that attempt) is worked at once rather than when the net would have caught it.
      else if (promote && delay === 0 && (await existing.isDelayed()))
        await existing.promote().catch(() => undefined);
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
   * Queues a committed entry: one job per destination. Each destination, local or a domain at
   * another operator, is attempted at once in this process when a hand-off slot is free
   * (ARCHITECTURE.md §6, delivery right after commit; the entry is in this node's spool, so this
   * node owns it): its job is added only when it must be retried, or, for an attempt that takes
   * long, as a safety net removed or rescheduled after it (the next start queues what a dead
   * process left). When its slots are all taken, the destination waits in memory (#waiting, bounded)
   * and is handed off as one frees up; only past that bound is it queued at once. Its safety net's
   * clock starts with its attempt, not while it waits: nothing runs then that a net could catch,
   * each attempt before it ends within its own timeouts, and a process that dies leaves it to the
   * next start exactly as it leaves a hand-off whose net was not added yet. Never throws: the entry
   * is durable in the spool already, and reconciliation adds what could not be added now (Redis down).
   */
  async enqueue(envelope: SpoolEnvelope): Promise<void> {
    for (const destination of destinationsOf(envelope).keys()) {
      if (!this.#started || this.#stopped || !this.#slots.mayTake(destination)) {
        await this.#add(envelope, destination, 0);
        continue;
      }
      // Behind those already waiting for this destination, never ahead of them.
      const release = this.#waiting.waiting(destination) ? undefined : this.#slots.take(destination);
      if (release) this.#startHandOff(envelope, destination, release);
      else if (this.#waiting.push(jobIdOf(envelope.id, destination), destination, envelope, envelope.size))
        this.#serveWaiting();
      else await this.#add(envelope, destination, 0);
    }
  }

  /** Destinations waiting in memory for a hand-off slot, local and relay (a gauge). */
  handOffWaiting(): { local: number; relay: number } {
    return this.#waiting.counts((destination) => destination === LOCAL_DESTINATION);
  }

  #startHandOff(envelope: SpoolEnvelope, destination: string, release: () => void): void {
    const run = this.#handOff(envelope, destination).finally(() => {
      release();
      this.#handoffs.delete(run);
      this.#serveWaiting();
    });
    this.#handoffs.add(run);
  }

  /**
   * Hands off the waiting destinations that a slot freed up for, oldest first. None once the stop
   * began: they are left to the queue (stop) and to the spool.
   */
  #serveWaiting(): void {
    if (this.#stopped || this.#waiting.size === 0) return;
    for (const { item, destination, release } of this.#waiting.serve((d) => this.#slots.take(d)))
      this.#startHandOff(item, destination, release);
  }

  /** Adds a destination's job; on failure, logs and leaves it to reconciliation. */
  async #add(envelope: SpoolEnvelope, destination: string, delay: number): Promise<boolean> {
    try {
      await this.#queue(queueOf(destination)).add(destination, this.#dataOf(envelope, destination), {
        jobId: jobIdOf(envelope.id, destination),
        ...(delay > 0 ? { delay } : {}),
      });
      return true;
    } catch (err) {
      this.#d.logger.warn(
        { event: 'queue.enqueue_failed', spoolId: envelope.id, err: (err as Error).message },
        'queue unavailable; the spooled message will be queued by reconciliation',
      );
      this.reconcileSoon();
      return false;
    }
  }

  /**
   * The attempt right after commit. The safety-net job is added if the attempt runs longer than
   * NET_AFTER_MS; should it come due first (an attempt longer than the lock), it waits for this
   * attempt and takes its outcome (#process) rather than attempting again before the retry time.
   */
  async #handOff(envelope: SpoolEnvelope, destination: string): Promise<void> {
    const id = jobIdOf(envelope.id, destination);
    let told: (at: Date | undefined) => void = () => undefined;
    this.#handoffOutcomes.set(id, new Promise<Date | undefined>((resolve) => (told = resolve)));
    let retryAt: Date | undefined;
    try {
      retryAt = await this.#attemptHandedOff(envelope, destination, id);
    } finally {
      this.#handoffOutcomes.delete(id);
      told(retryAt);
    }
  }

  /** The hand-off's attempt and the settling of its job; returns when to retry, if it must be. */
  async #attemptHandedOff(
    envelope: SpoolEnvelope,
    destination: string,
    id: string,
  ): Promise<Date | undefined> {
    const { worker, clock, logger, options } = this.#d;
    // The safety net is added only if the attempt is still running after NET_AFTER_MS: an attempt
    // that ends sooner costs Redis nothing when it delivered, one add when it must be retried. Should
    // the process die before, the spool is the truth: the next start queues every committed entry
    // (a local one asks the store first, the attempt having maybe reached it; a relay one is sent
    // again, at least once, as after any crash in the duplicate window: README, Durability).
    let added: Promise<boolean> | undefined;
    const net = setTimeout(() => {
      added = this.#add(envelope, destination, options.lockSeconds * 1000);
    }, NET_AFTER_MS);
    let retryAt: Date | undefined;
    try {
      const outcome = await this.#tracked(worker.work(envelope.id, destination));
      if (outcome.kind === 'retry') retryAt = outcome.at;
    } catch (err) {
      logger.error(
        { event: 'queue.job_error', spoolId: envelope.id, err: (err as Error).message },
        'delivery attempt failed; retrying later',
      );
      retryAt = new Date(clock.now().getTime() + 30_000);
    } finally {
      clearTimeout(net);
    }
    if (!added) {
      if (retryAt)
        await this.#add(envelope, destination, Math.max(0, retryAt.getTime() - clock.now().getTime()));
      return retryAt;
    }
    if (!(await added)) return retryAt; // reconciliation adds the job, from the spool's state
    try {
      // 0: the net came due and a worker holds it; that run adopts this outcome (#process).
      const removed = await this.#queue(queueOf(destination)).remove(id, { removeChildren: false });
      if (removed === 1 && retryAt)
        await this.#add(envelope, destination, Math.max(0, retryAt.getTime() - clock.now().getTime()));
    } catch (err) {
      // The net stays as it is: it works the entry when due, from the state in the spool.
      logger.warn(
        { event: 'queue.handoff_settle_failed', spoolId: envelope.id, err: (err as Error).message },
        'could not settle the queue job after the attempt; it stays as a safety net',
      );
    }
    return retryAt;
  }

  /** Keeps an attempt in #attempts while it runs. */
  #tracked<T>(attempt: Promise<T>): Promise<T> {
    const settled = attempt.then(
      () => undefined,
      () => undefined,
    );
    this.#attempts.add(settled);
    void settled.then(() => this.#attempts.delete(settled));
    return attempt;
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
      // Held in memory already: the DSN's report type, read before it is written.
      headers: indicatorHeadersOf(scanHeaders(message.raw)),
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
    // The safety net of a hand-off still running here came due (an attempt longer than the lock):
    // it takes that attempt's outcome, so the next attempt keeps the backoff the attempt set.
    // Its destination waits in memory for a hand-off slot (a reconciliation queued it meanwhile): the
    // job attempts it now, and the wait list forgets it.
    this.#waiting.delete(job.id!);
    const handedOff = this.#handoffOutcomes.get(job.id!);
    if (handedOff) {
      const at = await handedOff;
      if (!at) return;
      await job.moveToDelayed(at.getTime(), token);
      throw new DelayedError();
    }
    try {
      const outcome = await this.#tracked(this.#d.worker.work(spoolId, destination));
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

  /** Job counts by node, queue and state, for the metrics: a node that is down shows its backlog. */
  async counts(): Promise<Array<{ queue: string; node: string; state: string; count: number }>> {
    const rows: Array<{ queue: string; node: string; state: string; count: number }> = [];
    for (const { node } of await this.nodes()) {
      for (const name of QUEUE_NAMES) {
        const counts = await this.#queueOfNode(name, node).getJobCounts(...JOB_STATES);
        for (const state of JOB_STATES) rows.push({ queue: name, node, state, count: counts[state] ?? 0 });
      }
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
    for (const { node } of await this.nodes()) {
      for (const name of QUEUE_NAMES) {
        const queue = this.#queueOfNode(name, node);
        for (const state of states) {
          const jobs = (await queue.getJobs([state], 0, limit - 1, true)).filter((j) => j?.id);
          const due = state === 'delayed' ? await scheduledTimes(queue, jobs) : [];
          jobs.forEach((job, i) => out.push(this.#entryOf(name, node, state, job, due[i])));
        }
      }
    }
    out.sort((a, b) => a.data.receivedAt.localeCompare(b.data.receivedAt));
    return out.slice(0, limit);
  }

  #entryOf(
    queue: QueueName,
    node: string,
    state: string,
    job: Job<DeliveryJobData>,
    next: number | undefined,
  ): QueueEntry {
    return {
      id: job.id!,
      queue,
      node,
      state,
      data: job.data,
      ...(next === undefined ? {} : { nextAttemptAt: new Date(next).toISOString() }),
    };
  }

  /** The job with this id, in this node's queues first, then in the other nodes'. */
  async #find(id: string): Promise<{ queue: QueueName; node: string; job: Job<DeliveryJobData> }> {
    const parsed = parseJobId(id);
    if (!parsed) throw new GatewayError('QUEUE_JOB_NOT_FOUND', `no queue job ${id}`, { id });
    const queue = queueOf(parsed.destination);
    const own = this.#d.options.nodeId;
    const others = (await this.nodes()).map((n) => n.node).filter((n) => n !== own);
    for (const node of [own, ...others]) {
      const job = await this.#queueOfNode(queue, node).getJob(id);
      if (job) return { queue, node, job };
    }
    throw new GatewayError('QUEUE_JOB_NOT_FOUND', `no queue job ${id}`, { id });
  }

  async show(id: string): Promise<QueueEntry> {
    const { queue, node, job } = await this.#find(id);
    const state = await job.getState();
    // Progress is in the owner's spool: known here only for this node's jobs.
    const progress =
      node === this.#d.options.nodeId
        ? await this.#d.spool.readState(job.data.spoolId, job.data.destination)
        : undefined;
    const [next] = state === 'delayed' ? await scheduledTimes(this.#queueOfNode(queue, node), [job]) : [];
    return { ...this.#entryOf(queue, node, state, job, next), ...(progress ? { progress } : {}) };
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
    const { job, node } = await this.#find(id);
    // Only the owner can settle the spool entry (fail its recipients, send the DSN).
    if (node !== this.#d.options.nodeId)
      throw new GatewayError('QUEUE_JOB_BUSY', `job ${id} belongs to node ${node}: delete it there`, {
        id,
        node,
      });
    if ((await job.getState()) === 'active')
      throw new GatewayError('QUEUE_JOB_BUSY', `job ${id} is being attempted right now`, { id });
    const lock = await job.remove().then(
      () => true,
      () => false,
    );
    if (!lock) throw new GatewayError('QUEUE_JOB_BUSY', `job ${id} is being attempted right now`, { id });
    return job.data;
  }

  /**
   * Stops taking jobs, waits for jobs in flight (they finish or are rescheduled), closes Redis. Its
   * Redis commands may wait for a Redis that is gone; the attempts themselves need no Redis, and
   * drainAttempts waits for them whatever Redis does.
   */
  async stop(): Promise<void> {
    this.#beginStop();
    // Destinations waiting for a hand-off slot are not attempted once the stop began.
    const waiting = this.#waiting.clear();
    // Attempts in flight may finish (or reschedule themselves); past the deadline they are
    // abandoned, and their jobs go back to the queue when their lock expires (another node, or the
    // next start, takes them).
    const closing = Promise.allSettled(this.#workers.map((w) => w.close()));
    const drained = await this.#beforeDeadline(
      Promise.all([closing, ...this.#handoffs, this.drainAttempts()]),
    );
    if (!drained) {
      this.#d.logger.warn(
        { event: 'queue.drain_timeout' },
        'attempts still running at the drain deadline; left to the queue',
      );
      await Promise.allSettled(this.#workers.map((w) => w.close(true)));
    }
    // Queued once no worker of this process can take them any more: visible in `mssgw queue list`
    // and worked at the next start. Like the stop's other Redis steps, this waits for Redis; what
    // it cannot add is left to the next start's reconciliation from the spool.
    if (waiting.length > 0) {
      this.#d.logger.info(
        { event: 'queue.handoff_waiting_queued', count: waiting.length },
        'destinations waiting for a hand-off slot queued at stop',
      );
      await Promise.all(waiting.map(({ item, destination }) => this.#add(item, destination, 0)));
    }
    await this.#reconciling;
    await Promise.allSettled([...this.#queues.values()].map((q) => q.close()));
    await Promise.all(
      this.#connections.map((c) =>
        c.quit().then(
          () => undefined,
          () => c.disconnect(),
        ),
      ),
    );
  }

  /**
   * Waits until no attempt runs in this process (each has written its outcome to the spool), or
   * the drain deadline, counted from the stop. Needs no Redis: a stop during a Redis outage still
   * lets deliveries in flight end and record their outcome before the store connections close.
   * Returns whether every attempt ended.
   */
  async drainAttempts(): Promise<boolean> {
    this.#beginStop();
    const all = async (): Promise<void> => {
      while (this.#attempts.size > 0) await Promise.all([...this.#attempts]);
    };
    return this.#beforeDeadline(all());
  }

  #beginStop(): void {
    this.#stopped = true;
    this.#stopAt ??= this.#d.clock.now().getTime();
    if (this.#timer) clearInterval(this.#timer);
  }

  /** Whether `work` settles before the drain deadline. */
  async #beforeDeadline(work: Promise<unknown>): Promise<boolean> {
    const left = (this.#stopAt ?? 0) + this.#d.options.drainSeconds * 1000 - this.#d.clock.now().getTime();
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        work.then(
          () => true,
          () => true,
        ),
        new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), Math.max(0, left)))),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * When BullMQ will take each delayed job: its score in the queue's delayed set, the due time in
 * milliseconds times 0x1000 plus a counter that orders jobs due in the same millisecond (BullMQ 5,
 * getDelayedScore.lua). Not `timestamp + delay`: `timestamp` stays the job's creation while `delay`
 * is counted from its last move to delayed (a retry after an attempt, a promote then a retry), so
 * their sum is early by the age of the job at that move. Undefined for a job no longer delayed.
 */
async function scheduledTimes(
  queue: Queue<DeliveryJobData>,
  jobs: readonly Job<DeliveryJobData>[],
): Promise<Array<number | undefined>> {
  if (jobs.length === 0) return [];
  const client = await queue.client;
  // Sent together (ioredis writes them at once): one round trip, not one per job.
  const scores = await Promise.all(jobs.map((job) => client.zscore(queue.keys.delayed!, job.id!)));
  return scores.map((score) => (score === null ? undefined : Math.floor(Number(score) / 0x1000)));
}
