import type { Redis } from 'ioredis';
import { GatewayError, isGatewayError } from '../errors/index.js';
import type { Bal, BalSummary } from '../registry/index.js';
import {
  decideInactivity,
  type InactivityDecision,
  type InactivityThresholds,
  type PolicySubject,
} from './inactivity-policy.js';
import { LifecycleKeys } from './lifecycle-keys.js';
import { parseIsoInstant } from './lifecycle-time.js';
import type {
  ActivityReader,
  LifecycleRegistry,
  PublicationStateReader,
  PublicationView,
} from './lifecycle-ports.js';
import { mailPurgeDue, type MailPurgeDecision } from './mail-retention.js';

/**
 * What the lifecycle would do with one mailbox, and what it knew to decide so: from a summary of the
 * mailbox when the whole registry is planned, from its whole record when one mailbox is decided again.
 */
export interface PlannedBal<B extends BalSummary = BalSummary> {
  readonly bal: B;
  readonly publication: PublicationView | undefined;
  readonly decision: InactivityDecision;
  /** Present when the mail of this deleted mailbox is due for purging. */
  readonly purge?: MailPurgeDecision;
}

/** A step of a run: a warning, an unpublication, or a purge of deleted mail. */
export type PlanItem = Exclude<InactivityDecision, { action: 'none' }> | MailPurgeDecision;

export interface LifecyclePlannerOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  readonly thresholds: InactivityThresholds;
  /** Configuration `lifecycle.deletedMailRetentionDays`; undefined: purges are not planned. */
  readonly deletedMailRetentionDays?: number;
  readonly registry: Pick<LifecycleRegistry, 'get' | 'summaries'>;
  readonly activity: ActivityReader;
  readonly publication: PublicationStateReader;
}

/**
 * Mailboxes per page: one round trip for the registry and one for each other input (activity,
 * publication, warnings, purges). Large enough that round trips do not count at a million mailboxes,
 * small enough that a page holds a few megabytes and its registry script blocks Redis for a few
 * milliseconds (MAX_SUMMARY_LIMIT).
 */
export const DEFAULT_PAGE_SIZE = 2000;

/**
 * Pages read ahead of the caller: decided, or with their reads in flight. Enough that the server has
 * the next page's script queued behind this one's lookups while a page is decided and another is
 * written; more would only hold more memory, since the summary reads go one at a time anyway.
 */
const READ_AHEAD = 3;

/**
 * Gathers, a page of mailboxes at a time, what the policy needs (registry record, last use,
 * publication state, warning of the period, purge already done) and applies the pure rules. Reads
 * only: the daily run and `mssgw lifecycle preview` both use it.
 */
export class LifecyclePlanner {
  readonly #o: LifecyclePlannerOptions;
  readonly #keys: LifecycleKeys;

  constructor(options: LifecyclePlannerOptions) {
    this.#o = options;
    this.#keys = new LifecycleKeys(options.prefix);
  }

  /**
   * Every mailbox of the registry with its decision at `now` (ms), a page of summaries at a time:
   * memory stays that of a few pages whatever the registry's size. Reads run ahead of the caller, up
   * to READ_AHEAD pages decided or being decided: a page's summaries arrive, the next page's are
   * asked for at once (its cursor is known), then this page's other inputs, and the page is decided
   * when they arrive. Redis thus always has the next script or lookups queued while this process
   * decodes and decides, and the caller writes its steps meanwhile: on two cores the server's work
   * and ours overlap rather than take turns.
   */
  async *pages(now: number, pageSize = DEFAULT_PAGE_SIZE): AsyncGenerator<PlannedBal[]> {
    // Pages read and being decided, in registry order; each has a handler so that a failure while
    // nobody waits for it is not an unhandled rejection (it is thrown when its turn comes).
    const decided: Array<Promise<PlannedBal[]>> = [];
    let cursor: string | undefined;
    let exhausted = false;
    let stopped = false; // the caller stopped early: no more reads
    // The summary read in flight: one at a time, since each needs the previous page's cursor.
    let reading: Promise<void> | undefined;
    const read = (): Promise<void> => {
      const next = this.#o.registry
        .summaries({ limit: pageSize, ...(cursor === undefined ? {} : { cursor }) })
        .then(({ items, nextCursor }) => {
          cursor = nextCursor;
          exhausted = nextCursor === undefined;
          const page = items.length === 0 ? Promise.resolve([]) : this.#decide(items, now);
          page.catch(() => undefined);
          decided.push(page);
          reading = !exhausted && !stopped && decided.length < READ_AHEAD ? read() : undefined;
        });
      next.catch(() => undefined);
      return next;
    };
    reading = read();
    try {
      for (;;) {
        const page = decided.shift();
        if (page === undefined) {
          if (reading === undefined) return; // exhausted, every page handed out
          await reading; // throws if the read failed
          continue;
        }
        // A page handed out makes room: the reads stopped at READ_AHEAD go on.
        if (reading === undefined && !exhausted) reading = read();
        const planned = await page;
        if (planned.length > 0) yield planned;
      }
    } finally {
      stopped = true;
    }
  }

  /** The decision for one mailbox at `now`, from fresh reads of its whole record; undefined when it does not exist. */
  async one(address: string, now: number): Promise<PlannedBal<Bal> | undefined> {
    const bal = await this.#o.registry.get(address);
    if (!bal) return undefined;
    return (await this.#decide([bal], now))[0];
  }

  async #decide<B extends BalSummary>(bals: readonly B[], now: number): Promise<Array<PlannedBal<B>>> {
    const addresses = bals.map((b) => b.address);
    const purging = this.#o.deletedMailRetentionDays !== undefined;
    const [activity, publication, warned, purged] = await Promise.all([
      this.#o.activity.lastActivityOf(addresses),
      this.#o.publication.statesOf(bals),
      this.#o.redis.hmget(this.#keys.warned, ...addresses),
      purging ? this.#o.redis.smismember(this.#keys.mailPurged, ...addresses) : Promise.resolve([]),
    ]).catch((err: unknown) => {
      if (isGatewayError(err)) throw err;
      throw new GatewayError(
        'REGISTRY_UNAVAILABLE',
        `lifecycle inputs unreadable: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    });
    const { thresholds, deletedMailRetentionDays: retention } = this.#o;
    const planned = new Array<PlannedBal<B>>(bals.length);
    for (let i = 0; i < bals.length; i += 1) {
      const bal = bals[i] as B;
      const view = publication[i];
      const decision = decideInactivity(
        policySubject(bal, view, activity[i], warned[i] ?? null),
        now,
        thresholds,
      );
      // Only a deleted mailbox can be due for a purge: the others need no look at the rule.
      const purge =
        retention === undefined || bal.status !== 'deleted'
          ? undefined
          : mailPurgeDue(bal, now, retention, purged[i] === 1);
      planned[i] =
        purge === undefined
          ? { bal, publication: view, decision }
          : { bal, publication: view, decision, purge };
    }
    return planned;
  }
}

/** The policy's view of one mailbox. Built a million times a run: no spread, instants parsed once. */
export function policySubject(
  bal: BalSummary,
  view: PublicationView | undefined,
  lastActivityAt: number | undefined,
  warnedAt: string | null,
): PolicySubject {
  const createdAt = parseIsoInstant(bal.createdAt);
  const subject: { -readonly [K in keyof PolicySubject]: PolicySubject[K] } = {
    address: bal.address,
    status: bal.status,
    createdAt,
    redListed: view?.redListed === true,
    publication: view?.state,
  };
  // A publication state kept since creation (AssumedPublication) is the same instant again.
  const since =
    view?.since === undefined ? NaN : view.since === bal.createdAt ? createdAt : parseIsoInstant(view.since);
  if (!Number.isNaN(since)) subject.publishedSince = since;
  if (lastActivityAt !== undefined) subject.lastActivityAt = lastActivityAt;
  const warned = warnedAt === null ? NaN : Number(warnedAt);
  if (!Number.isNaN(warned)) subject.warnedAt = warned;
  return subject;
}

/** The steps a page calls for, in order: warnings and unpublications, then purges. */
export function planItems(page: readonly PlannedBal[]): PlanItem[] {
  const items: PlanItem[] = [];
  for (const p of page) {
    if (p.decision.action !== 'none') items.push(p.decision);
    if (p.purge) items.push(p.purge);
  }
  return items;
}
