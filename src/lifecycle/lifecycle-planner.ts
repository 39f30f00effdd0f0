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

/** A page of the registry with its decisions, and the cursor of the next one. */
interface DecidedPage {
  readonly planned: PlannedBal[];
  readonly nextCursor: string | undefined;
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
   * memory stays that of a page or two whatever the registry's size. The next page is read and
   * decided while this one is handed out (the run writes its steps meanwhile): its round trips, to
   * the registry and then for the other inputs, overlap the rest rather than wait one after another.
   */
  async *pages(now: number, pageSize = DEFAULT_PAGE_SIZE): AsyncGenerator<PlannedBal[]> {
    let next: Promise<DecidedPage> | undefined = this.#ahead(undefined, pageSize, now);
    while (next !== undefined) {
      const page: DecidedPage = await next;
      next = page.nextCursor === undefined ? undefined : this.#ahead(page.nextCursor, pageSize, now);
      if (page.planned.length > 0) yield page.planned;
    }
  }

  /** A registry page, decided; a read ahead that fails while nobody waits for it is not an unhandled error. */
  #ahead(cursor: string | undefined, limit: number, now: number): Promise<DecidedPage> {
    const page = this.#o.registry
      .summaries({ limit, ...(cursor === undefined ? {} : { cursor }) })
      .then(async ({ items, nextCursor }) => ({
        planned: items.length === 0 ? [] : await this.#decide(items, now),
        nextCursor,
      }));
    page.catch(() => undefined);
    return page;
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
    return bals.map((bal, i) => {
      const view = publication[i];
      const subject = policySubject(bal, view, activity[i], warned[i] ?? null);
      const decision = decideInactivity(subject, now, this.#o.thresholds);
      const retention = this.#o.deletedMailRetentionDays;
      const purge = retention === undefined ? undefined : mailPurgeDue(bal, now, retention, purged[i] === 1);
      return { bal, publication: view, decision, ...(purge === undefined ? {} : { purge }) };
    });
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
