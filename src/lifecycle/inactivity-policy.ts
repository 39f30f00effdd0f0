import type { PublicationStateName } from '../publication/index.js';
import type { BalStatus } from '../registry/index.js';
import { DAY_MS } from './lifecycle-time.js';

/**
 * The inactivity policy (MSSANTE.md "Lifecycle and indicators", STYLE.md convention 6): a pure
 * function of what we know about one mailbox and the clock. The national programme unpublishes
 * MSSanté addresses unused for 45 days so that senders stop writing into the void; the operator warns
 * the owner before (15 days by default) and republishes the moment the mailbox is used again.
 *
 * Use is a successful login to the mailbox (IMAP, submission, application certificate) or a
 * submission from it, by its owner or through a right (the registry records a delegate's login on
 * the delegator's mailbox); receiving mail is not use. The inactivity period starts at the latest
 * of: the last use, the creation of the mailbox (never used), its (re)publication (a mailbox
 * republished after a suspension gets a fresh period rather than being unpublished at once).
 *
 * Rules, in order:
 * 1. deleted, suspended and red-listed mailboxes are never candidates;
 * 2. only published mailboxes are candidates (not pending, failed, or unpublished for any reason);
 * 3. from `inactivityDays − warningLeadDays` days of inactivity, one warning per inactivity period
 *    (a later use starts a new period, so a new warning);
 * 4. from `inactivityDays` days, unpublication, but never with less notice than announced: a
 *    mailbox warned late (the job was down, or the feature just enabled) keeps its full notice.
 */

export interface InactivityThresholds {
  /** Days of inactivity before unpublication (configuration `lifecycle.inactivityDays`, 45). */
  readonly inactivityDays: number;
  /** Days of notice given by the warning (configuration `lifecycle.warningLeadDays`, 15). */
  readonly warningLeadDays: number;
}

/** What the policy knows of one mailbox. Instants are milliseconds since the epoch. */
export interface PolicySubject {
  readonly address: string;
  readonly status: BalStatus;
  readonly createdAt: number;
  /** `listeRouge`: the mailbox must not be published. */
  readonly redListed: boolean;
  /** Undefined when the publication module has no state for it (never a candidate then). */
  readonly publication: PublicationStateName | undefined;
  /** When it entered its publication state. */
  readonly publishedSince?: number;
  /** Latest use on any channel; undefined when never used. */
  readonly lastActivityAt?: number;
  /** When the last inactivity warning was put into the mailbox. */
  readonly warnedAt?: number;
}

/** Why a mailbox is left alone. */
export type NoDecisionReason =
  | 'deleted'
  | 'suspended'
  | 'red-listed'
  | 'publication-unknown'
  | 'not-published'
  | 'recently-used'
  | 'warned';

/** What justifies a warning or an unpublication: journaled, and shown by `mssgw lifecycle preview`. */
export interface InactivityEvidence {
  /** Latest use of the mailbox (ISO); null when it was never used. */
  readonly lastActivityAt: string | null;
  /** Start of the inactivity period (ISO). */
  readonly inactiveSince: string;
  /** What started the period: the last use, the creation, or the (re)publication. */
  readonly basis: 'activity' | 'creation' | 'publication';
  /** Whole days of inactivity at the decision. */
  readonly idleDays: number;
  readonly inactivityDays: number;
  readonly warningLeadDays: number;
  /** The warning of this period (ISO); null when none was sent yet. */
  readonly warnedAt: string | null;
  /** When the mailbox is (or became) due for unpublication (ISO): the date a warning announces. */
  readonly unpublishAt: string;
  /** The decision time (ISO). */
  readonly decidedAt: string;
}

export type InactivityDecision =
  | {
      readonly action: 'none';
      readonly address: string;
      readonly reason: NoDecisionReason;
      /** Whole days of inactivity, for candidates only. */
      readonly idleDays?: number;
    }
  | {
      readonly action: 'warn';
      readonly address: string;
      /** `overdue-warning`: the mailbox is already past the threshold and was never warned. */
      readonly reason: 'inactivity-warning' | 'overdue-warning';
      readonly evidence: InactivityEvidence;
    }
  | {
      readonly action: 'unpublish-inactive';
      readonly address: string;
      readonly reason: 'inactive';
      readonly evidence: InactivityEvidence;
    };

export type InactivityAction = InactivityDecision['action'];

/**
 * The daily run starts at about the same time each day, but never at exactly the same millisecond:
 * a warning given at 03:15:02 must allow the unpublication at 03:15:01 fifteen runs later, not one
 * run after that. The notice is therefore counted in daily runs, with half a day of slack.
 */
const NOTICE_SLACK_MS = DAY_MS / 2;

/** Decides for one mailbox at `now` (ms). Pure; allocation-light for the million-mailbox run. */
export function decideInactivity(
  subject: PolicySubject,
  now: number,
  thresholds: InactivityThresholds,
): InactivityDecision {
  const { address } = subject;
  const excluded = exclusion(subject);
  if (excluded !== undefined) return { action: 'none', address, reason: excluded };

  const period = inactivityPeriod(subject);
  const idleMs = now - period.since;
  const idleDays = Math.max(0, Math.floor(idleMs / DAY_MS));
  const unpublishAt = period.since + thresholds.inactivityDays * DAY_MS;
  const warnAt = unpublishAt - thresholds.warningLeadDays * DAY_MS;
  if (now < warnAt) return { action: 'none', address, reason: 'recently-used', idleDays };

  const leadMs = thresholds.warningLeadDays * DAY_MS;
  const warnedAt =
    subject.warnedAt !== undefined && subject.warnedAt >= period.since ? subject.warnedAt : undefined;
  if (warnedAt === undefined) {
    const announced = Math.max(unpublishAt, now + leadMs);
    return {
      action: 'warn',
      address,
      reason: now >= unpublishAt ? 'overdue-warning' : 'inactivity-warning',
      evidence: evidence(subject, period, idleDays, thresholds, undefined, announced, now),
    };
  }
  const due = Math.max(unpublishAt, warnedAt + leadMs - NOTICE_SLACK_MS);
  if (now < due) return { action: 'none', address, reason: 'warned', idleDays };
  return {
    action: 'unpublish-inactive',
    address,
    reason: 'inactive',
    evidence: evidence(subject, period, idleDays, thresholds, warnedAt, due, now),
  };
}

function exclusion(subject: PolicySubject): NoDecisionReason | undefined {
  if (subject.status === 'deleted') return 'deleted';
  if (subject.status === 'suspended') return 'suspended';
  if (subject.redListed) return 'red-listed';
  if (subject.publication === undefined) return 'publication-unknown';
  if (subject.publication !== 'published') return 'not-published';
  return undefined;
}

interface Period {
  readonly since: number;
  readonly basis: InactivityEvidence['basis'];
}

function inactivityPeriod(subject: PolicySubject): Period {
  let period: Period =
    subject.lastActivityAt === undefined
      ? { since: subject.createdAt, basis: 'creation' }
      : { since: subject.lastActivityAt, basis: 'activity' };
  if (subject.publishedSince !== undefined && subject.publishedSince > period.since) {
    period = { since: subject.publishedSince, basis: 'publication' };
  }
  return period;
}

function evidence(
  subject: PolicySubject,
  period: Period,
  idleDays: number,
  thresholds: InactivityThresholds,
  warnedAt: number | undefined,
  unpublishAt: number,
  now: number,
): InactivityEvidence {
  const lastActivityAt = subject.lastActivityAt === undefined ? null : iso(subject.lastActivityAt);
  return {
    lastActivityAt,
    // The period most often starts at the last use: the same instant, the same string.
    inactiveSince:
      period.basis === 'activity' && lastActivityAt !== null ? lastActivityAt : iso(period.since),
    basis: period.basis,
    idleDays,
    inactivityDays: thresholds.inactivityDays,
    warningLeadDays: thresholds.warningLeadDays,
    warnedAt: warnedAt === undefined ? null : iso(warnedAt),
    unpublishAt: unpublishAtIso.of(unpublishAt),
    decidedAt: decidedAtIso.of(now),
  };
}

/**
 * `iso` of an instant a run repeats for most of its decisions, each kept in a slot of its own: the
 * run's time (decidedAt), and its time plus the notice (the unpublishAt of every overdue warning).
 */
class LastIso {
  #ms = NaN;
  #text = '';

  of(ms: number): string {
    if (ms !== this.#ms) {
      this.#text = iso(ms);
      this.#ms = ms;
    }
    return this.#text;
  }
}
const decidedAtIso = new LastIso();
const unpublishAtIso = new LastIso();

/**
 * `Date.prototype.toISOString`, without a Date per call: evidence carries four instants for each of
 * the hundreds of thousands of mailboxes a million-mailbox run warns. Years 1970 to 9999 are
 * formatted here (civil date from days, H. Hinnant's algorithm); others go through Date.
 */
export function iso(ms: number): string {
  if (!Number.isInteger(ms) || ms < 0 || ms >= MAX_FAST_ISO_MS) return new Date(ms).toISOString();
  const days = Math.floor(ms / DAY_MS);
  let rest = ms - days * DAY_MS;
  const millis = rest % 1000;
  rest = (rest - millis) / 1000;
  const seconds = rest % 60;
  rest = (rest - seconds) / 60;
  const minutes = rest % 60;
  const hours = (rest - minutes) / 60;
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  return (
    `${year}-${two(month)}-${two(day)}T${two(hours)}:${two(minutes)}:${two(seconds)}.` +
    `${millis < 10 ? '00' : millis < 100 ? '0' : ''}${millis}Z`
  );
}

/** 10000-01-01T00:00:00.000Z: toISOString writes years from 10000 on with a sign and six digits. */
const MAX_FAST_ISO_MS = 253_402_300_800_000;

function two(n: number): string {
  return n < 10 ? `0${n}` : `${n}`;
}
