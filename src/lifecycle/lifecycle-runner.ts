import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { GatewayError, toGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { InactivityDecision } from './inactivity-policy.js';
import { LifecycleKeys } from './lifecycle-keys.js';
import { LifecyclePlanner, planItems, type PlanItem, type PlannedBal } from './lifecycle-planner.js';
import type {
  ActivityReader,
  CallOutcome,
  DirectoryAnswer,
  LifecycleObserver,
  LifecyclePublisher,
  LifecycleRegistry,
  MailPurger,
  PublicationStateReader,
  WarningAudienceOf,
  WarningDelivery,
} from './lifecycle-ports.js';
import type { Bal } from '../registry/index.js';
import { DAY_MS, dayInZone } from './lifecycle-time.js';
import type { MailPurgeDecision } from './mail-retention.js';
import { RunLock } from './run-lock.js';
import { buildWarningMessage } from './warning-message.js';
import { type WarningAudience, type WarningRecipient, warningRecipients } from './warning-recipients.js';

export interface LifecycleRunnerOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  readonly config: Pick<
    Config['lifecycle'],
    'inactivityDays' | 'warningLeadDays' | 'timeZone' | 'deletedMailRetentionDays'
  >;
  readonly registry: LifecycleRegistry;
  readonly activity: ActivityReader;
  readonly publication: PublicationStateReader;
  readonly publisher: LifecyclePublisher;
  readonly warnings: WarningDelivery;
  /** Who else gets a mailbox's warning (issue #13); without it, the mailbox only. */
  readonly warningAudience?: WarningAudienceOf;
  /** Without it, the mail of deleted mailboxes is not purged (and no purge is planned). */
  readonly mailPurger?: MailPurger;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly observer?: LifecycleObserver;
  /** Lease of a run: a killed runner's run is taken up again this long after. Default 60 s. */
  readonly lockTtlMs?: number;
}

/** What one call of `runOnce` did. */
export interface RunSummary {
  /** The day of the run (`YYYY-MM-DD` in `lifecycle.timeZone`): one run per day. */
  readonly runId: string;
  /** `already-done`: today's run had finished; nothing was done again. */
  readonly status: 'done' | 'already-done';
  /** The run had been interrupted (a crash) and was taken up where it stopped. */
  readonly resumed: boolean;
  /** The instant the plan was made for (ISO). */
  readonly asOf: string;
  /** Steps planned: warnings, unpublications, purges. */
  readonly planned: number;
  /** Steps by outcome (`warned`, `unpublished`, `superseded`, …). */
  readonly outcomes: Readonly<Record<string, number>>;
  /** Decisions of the plan by `action:reason`, every mailbox counted. */
  readonly decisions: Readonly<Record<string, number>>;
  /** Expired grants removed at the start of the run. */
  readonly rightsExpired: number;
}

type StepOutcome =
  | 'warned'
  | 'warning-failed'
  | 'unpublished'
  | `unpublication-${Exclude<CallOutcome, 'ok'>}`
  | 'purged'
  | 'purge-failed'
  | 'superseded';

const DEFAULT_LOCK_TTL_MS = 60_000;
// Finished runs stay readable (the preview, an operator's questions) for a month and a bit.
const KEEP_RUN_SECONDS = 35 * 86_400;
const CHUNK = 100;

/**
 * The daily lifecycle job (issue #6). A run, one per day, in two phases:
 *
 * 1. plan: expired grants are purged (each journaled by the registry), then every mailbox is decided
 *    by the pure policy and the steps (warnings, unpublications, purges of deleted mail) are written
 *    to a Redis list with the run's state (`lifecycle-keys.ts`). Planning has no side effect on
 *    mailboxes; a crash while planning plans again.
 * 2. execute: the steps one at a time, the cursor moved after each. A step is decided again from
 *    fresh reads just before it is carried out, so a mailbox used since the plan is left alone, and
 *    a step a killed process had in flight is not repeated once its effect is visible (the
 *    publication state says unpublished, the warning is recorded). A crash between the directory's
 *    answer and the publication store's update can still repeat that one call: the publisher's
 *    unpublication is idempotent.
 *
 * One runner at a time across processes (a Redis lease); the BullMQ job scheduler
 * (lifecycle-scheduler.ts) starts it daily and hands a killed runner's job to another process.
 */
export class LifecycleRunner {
  readonly #o: LifecycleRunnerOptions;
  readonly #keys: LifecycleKeys;
  readonly #planner: LifecyclePlanner;

  constructor(options: LifecycleRunnerOptions) {
    this.#o = options;
    this.#keys = new LifecycleKeys(options.prefix);
    this.#planner = new LifecyclePlanner({
      redis: options.redis,
      prefix: options.prefix,
      thresholds: options.config,
      ...(options.mailPurger ? { deletedMailRetentionDays: options.config.deletedMailRetentionDays } : {}),
      registry: options.registry,
      activity: options.activity,
      publication: options.publication,
    });
  }

  /** Today's run: planned and carried out, or taken up where it stopped. LIFECYCLE_BUSY if running elsewhere. */
  async runOnce(signal?: AbortSignal): Promise<RunSummary> {
    const ttl = this.#o.lockTtlMs ?? DEFAULT_LOCK_TTL_MS;
    const lock = new RunLock({ redis: this.#o.redis, key: this.#keys.lock, ttlMs: ttl });
    if (!(await lock.acquireWithin(Math.ceil(ttl * 1.5)))) {
      throw new GatewayError('LIFECYCLE_BUSY', 'the lifecycle run is already going on in another process');
    }
    try {
      return await this.#run(() => assertGoing(lock, signal));
    } finally {
      await lock.release();
    }
  }

  async #run(going: () => void): Promise<RunSummary> {
    const { redis, clock, journal } = this.#o;
    const now = clock.now();
    const runId = dayInZone(now.getTime(), this.#o.config.timeZone);
    const state = await redis.hgetall(this.#keys.run(runId));
    if (state.phase === 'done') return summaryOf(runId, state, 'already-done', false);
    const resumed = state.phase === 'executing';
    journal.record({
      event: 'lifecycle.run.started',
      runId,
      resumed,
      asOf: resumed ? state.asOf : now.toISOString(),
    });
    if (!resumed) await this.#plan(runId, now, going);
    await this.#execute(runId, going);
    const done = await this.#finish(runId);
    const summary = summaryOf(runId, done, 'done', resumed);
    journal.record({
      event: 'lifecycle.run.finished',
      runId,
      resumed,
      planned: summary.planned,
      outcomes: summary.outcomes,
      rightsExpired: summary.rightsExpired,
    });
    this.#o.logger.info({ event: 'lifecycle.run.finished', ...summary }, 'lifecycle run finished');
    return summary;
  }

  async #plan(runId: string, now: Date, going: () => void): Promise<void> {
    const { redis } = this.#o;
    const runKey = this.#keys.run(runId);
    const draft = this.#keys.draft(runId);
    await redis
      .multi()
      .del(runKey, draft)
      .hset(runKey, { phase: 'planning', asOf: now.toISOString() })
      .expire(runKey, KEEP_RUN_SECONDS)
      .exec();
    const expired = await this.#o.registry.purgeExpiredGrants(now);
    if (expired.length > 0) {
      this.#o.journal.record({ event: 'lifecycle.rights.expired', runId, count: expired.length });
    }
    let total = 0;
    const tally = new DecisionTally();
    for await (const page of this.#planner.pages(now.getTime())) {
      going();
      for (const p of page) tally.add(p.decision);
      const items = planItems(page);
      if (items.length === 0) continue;
      await redis.rpush(draft, ...items.map((item) => JSON.stringify(item)));
      total += items.length;
    }
    const decisions = tally.counts();
    const commit = redis.multi().del(this.#keys.plan(runId));
    if (total > 0)
      commit.rename(draft, this.#keys.plan(runId)).expire(this.#keys.plan(runId), KEEP_RUN_SECONDS);
    await commit
      .hset(runKey, {
        phase: 'executing',
        total: String(total),
        cursor: '0',
        decisions: JSON.stringify(decisions),
        rightsExpired: String(expired.length),
      })
      .exec();
    this.#o.journal.record({
      event: 'lifecycle.run.planned',
      runId,
      asOf: now.toISOString(),
      total,
      decisions,
    });
  }

  async #execute(runId: string, going: () => void): Promise<void> {
    const { redis } = this.#o;
    const runKey = this.#keys.run(runId);
    const state = await redis.hgetall(runKey);
    const total = Number(state.total ?? 0);
    let cursor = Number(state.cursor ?? 0);
    // The step a killed runner had started: carried out again only if its effect is not visible.
    const inFlight = state.inflight === undefined ? undefined : Number(state.inflight);
    while (cursor < total) {
      const chunk = await redis.lrange(this.#keys.plan(runId), cursor, cursor + CHUNK - 1);
      if (chunk.length === 0) {
        throw new GatewayError('INTERNAL', `lifecycle run ${runId}: plan shorter than its total`, { runId });
      }
      for (const json of chunk) {
        going();
        await redis.hset(runKey, 'inflight', String(cursor));
        const outcome = await this.#step(JSON.parse(json) as PlanItem, inFlight === cursor);
        cursor += 1;
        await redis
          .multi()
          .hset(runKey, 'cursor', String(cursor))
          .hdel(runKey, 'inflight')
          .hincrby(runKey, `outcome:${outcome}`, 1)
          .exec();
      }
    }
  }

  async #finish(runId: string): Promise<Record<string, string>> {
    const { redis, clock } = this.#o;
    const runKey = this.#keys.run(runId);
    const [, , , state] = (await redis
      .multi()
      .hset(runKey, { phase: 'done', finishedAt: clock.now().toISOString() })
      .expire(runKey, KEEP_RUN_SECONDS)
      .expire(this.#keys.plan(runId), KEEP_RUN_SECONDS)
      .hgetall(runKey)
      .exec()) as [unknown, unknown, unknown, [Error | null, Record<string, string>]];
    return state[1];
  }

  /** Decides the step again from fresh reads, then carries it out if it still holds. */
  async #step(item: PlanItem, wasInFlight: boolean): Promise<StepOutcome> {
    const now = this.#o.clock.now();
    const fresh = await this.#planner.one(item.address, now.getTime());
    const current: PlanItem | InactivityDecision | undefined =
      item.action === 'purge-mail' ? fresh?.purge : fresh?.decision;
    if (wasInFlight && fresh !== undefined) {
      const confirmed = this.#confirmInFlight(item, fresh);
      if (confirmed !== undefined) return confirmed;
    }
    if (fresh === undefined || current === undefined || current.action !== item.action) {
      this.#o.journal.record({
        event: 'lifecycle.step.superseded',
        address: item.address,
        planned: item.action,
        decision: current?.action ?? 'none',
        reason: fresh === undefined ? 'mailbox-missing' : fresh.decision.reason,
        ...(wasInFlight ? { resumedInFlight: true } : {}),
      });
      return 'superseded';
    }
    switch (current.action) {
      case 'warn':
        return this.#warn(current, fresh.bal, now, wasInFlight);
      case 'unpublish-inactive':
        return this.#unpublish(current);
      case 'purge-mail':
        return this.#purge(current);
    }
  }

  /**
   * The step a killed runner had in flight, when its effect is visible: the publication state says
   * unpublished for inactivity, or the warning of this period is recorded. Journaled again, since
   * the process died before (or just after) journaling it.
   */
  #confirmInFlight(item: PlanItem, fresh: PlannedBal): StepOutcome | undefined {
    const { journal, observer } = this.#o;
    if (item.action === 'unpublish-inactive' && fresh.publication?.state === 'unpublished-inactive') {
      journal.record({
        event: 'lifecycle.unpublished',
        address: item.address,
        reason: 'inactive',
        lastActivityAt: item.evidence.lastActivityAt,
        thresholdDays: item.evidence.inactivityDays,
        decidedAt: item.evidence.decidedAt,
        directoryResponse:
          'answer lost when the runner stopped; the publication state is unpublished-inactive',
        evidence: item.evidence,
        resumedInFlight: true,
      });
      observer?.unpublication('ok');
      return 'unpublished';
    }
    if (item.action === 'warn' && fresh.decision.action === 'none' && fresh.decision.reason === 'warned') {
      journal.record({
        event: 'lifecycle.warning.sent',
        address: item.address,
        reason: item.reason,
        evidence: item.evidence,
        channel: 'mailbox',
        recipient: item.address,
        resumedInFlight: true,
      });
      return 'warned';
    }
    return undefined;
  }

  /**
   * Sends the warning to each recipient (warning-recipients.ts) not yet sent this inactivity period,
   * recording each one after its delivery, then marks the mailbox warned: a run killed half-way
   * sends the rest when taken up, never one twice (a crash between a delivery and its record repeats
   * that one message rather than skipping it). A failed channel leaves the mailbox unmarked, so the
   * next run sends what is missing.
   */
  async #warn(
    decision: Extract<InactivityDecision, { action: 'warn' }>,
    bal: Bal,
    now: Date,
    wasInFlight: boolean,
  ): Promise<StepOutcome> {
    const { redis, journal, logger } = this.#o;
    const { address, evidence } = decision;
    const period = Date.parse(evidence.inactiveSince);
    const sentKey = this.#keys.warnedTo(address);
    const [recipients, sent] = await Promise.all([this.#recipientsOf(bal), redis.hgetall(sentKey)]);
    let failed = 0;
    for (const r of recipients) {
      const line = { address, reason: decision.reason, channel: r.channel, recipient: r.address, evidence };
      if (Number(sent[r.address]) >= period) {
        // Sent by the run that was killed: journaled again, as it may have died before journaling.
        if (wasInFlight) journal.record({ event: 'lifecycle.warning.sent', ...line, resumedInFlight: true });
        continue;
      }
      const message = buildWarningMessage({
        address,
        to: r.address,
        unpublishAt: new Date(evidence.unpublishAt),
        ...(evidence.lastActivityAt === null ? {} : { lastActivityAt: new Date(evidence.lastActivityAt) }),
        inactivityDays: this.#o.config.inactivityDays,
        timeZone: this.#o.config.timeZone,
        date: now,
      });
      try {
        await this.#o.warnings.deliver(r.address, message.raw);
      } catch (err) {
        const why = toGatewayError(err).message;
        failed += 1;
        journal.record({ event: 'lifecycle.warning.failed', ...line, error: why });
        logger.warn(
          { event: 'lifecycle.warning.failed', address, channel: r.channel, err: why },
          'warning not delivered',
        );
        continue;
      }
      await redis
        .multi()
        .hset(sentKey, r.address, String(period))
        .expire(sentKey, Math.ceil((2 * this.#o.config.inactivityDays * DAY_MS) / 1000))
        .exec();
      journal.record({ event: 'lifecycle.warning.sent', ...line });
    }
    if (failed > 0) {
      this.#o.observer?.warning('error');
      return 'warning-failed';
    }
    await redis.hset(this.#keys.warned, address, String(now.getTime()));
    this.#o.observer?.warning('ok');
    return 'warned';
  }

  /** The mailbox, and whoever else should read its warning; the mailbox alone if the lookup fails. */
  async #recipientsOf(bal: Bal): Promise<WarningRecipient[]> {
    let audience: WarningAudience = { owner: [], managers: [] };
    try {
      if (this.#o.warningAudience) audience = await this.#o.warningAudience(bal);
    } catch (err) {
      const why = toGatewayError(err).message;
      this.#o.journal.record({
        event: 'lifecycle.warning.audience_failed',
        address: bal.address,
        error: why,
      });
      this.#o.logger.warn(
        { event: 'lifecycle.warning.audience_failed', address: bal.address, err: why },
        'owner and managers not found; the warning goes to the mailbox only',
      );
    }
    return warningRecipients(bal.address, audience);
  }

  async #unpublish(
    decision: Extract<InactivityDecision, { action: 'unpublish-inactive' }>,
  ): Promise<StepOutcome> {
    const { redis, journal } = this.#o;
    const { address, evidence } = decision;
    // Flagged before the call: a use during the call must find the flag and ask for republication.
    await redis.sadd(this.#keys.unpublishedInactive, address);
    let answer: DirectoryAnswer;
    let outcome: CallOutcome;
    try {
      answer = await this.#o.publisher.unpublishInactive(address, evidence);
      outcome = answer.ok ? 'ok' : 'refused';
    } catch (err) {
      answer = { ok: false, response: toGatewayError(err).message };
      outcome = 'error';
    }
    this.#o.observer?.unpublication(outcome);
    if (outcome !== 'ok') {
      await redis.srem(this.#keys.unpublishedInactive, address);
      journal.record({
        event: 'lifecycle.unpublication.failed',
        address,
        outcome,
        evidence,
        directoryResponse: answer.response,
      });
      this.#o.logger.warn(
        { event: 'lifecycle.unpublication.failed', address, outcome, response: answer.response },
        'unpublication of an inactive mailbox failed; the next run tries again',
      );
      return outcome === 'refused' ? 'unpublication-refused' : 'unpublication-error';
    }
    journal.record({
      event: 'lifecycle.unpublished',
      address,
      reason: 'inactive',
      lastActivityAt: evidence.lastActivityAt,
      thresholdDays: evidence.inactivityDays,
      decidedAt: evidence.decidedAt,
      directoryResponse: answer.response,
      evidence,
    });
    return 'unpublished';
  }

  async #purge(decision: MailPurgeDecision): Promise<StepOutcome> {
    const { address } = decision;
    const purger = this.#o.mailPurger;
    if (!purger) return 'superseded';
    try {
      await purger.purge(address);
    } catch (err) {
      const why = toGatewayError(err).message;
      this.#o.journal.record({ event: 'lifecycle.mail.purge_failed', address, error: why });
      return 'purge-failed';
    }
    await this.#o.redis.sadd(this.#keys.mailPurged, address);
    this.#o.journal.record({
      event: 'lifecycle.mail.purged',
      address,
      deletedAt: decision.deletedAt,
      retentionDays: decision.retentionDays,
    });
    return 'purged';
  }
}

/**
 * Decisions counted by `action:reason` without building that string a million times a run: by
 * action, then by reason (both literals of the policy), joined once at the end.
 */
class DecisionTally {
  readonly #byAction = new Map<string, Map<string, number>>();

  add(decision: InactivityDecision): void {
    let byReason = this.#byAction.get(decision.action);
    if (byReason === undefined) {
      byReason = new Map();
      this.#byAction.set(decision.action, byReason);
    }
    byReason.set(decision.reason, (byReason.get(decision.reason) ?? 0) + 1);
  }

  counts(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const [action, byReason] of this.#byAction) {
      for (const [reason, n] of byReason) counts[`${action}:${reason}`] = n;
    }
    return counts;
  }
}

/** Throws when the run must stop before its next step: lease lost, or the gateway stopping. */
function assertGoing(lock: RunLock, signal: AbortSignal | undefined): void {
  if (!lock.held) {
    throw new GatewayError('LIFECYCLE_BUSY', 'the lifecycle run lost its lease (Redis slow or unreachable)');
  }
  if (signal?.aborted) {
    throw new GatewayError(
      'LIFECYCLE_BUSY',
      'the lifecycle run stopped with the gateway; it is taken up later',
    );
  }
}

function summaryOf(
  runId: string,
  state: Record<string, string>,
  status: RunSummary['status'],
  resumed: boolean,
): RunSummary {
  const outcomes: Record<string, number> = {};
  for (const [field, value] of Object.entries(state)) {
    if (field.startsWith('outcome:')) outcomes[field.slice('outcome:'.length)] = Number(value);
  }
  let decisions: Record<string, number> = {};
  try {
    decisions = JSON.parse(state.decisions ?? '{}') as Record<string, number>;
  } catch {
    // A state written by hand: report no decisions rather than fail a finished run.
  }
  return {
    runId,
    status,
    resumed,
    asOf: state.asOf ?? '',
    planned: Number(state.total ?? 0),
    outcomes,
    decisions,
    rightsExpired: Number(state.rightsExpired ?? 0),
  };
}
