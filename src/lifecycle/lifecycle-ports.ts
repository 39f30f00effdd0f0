import type { Bal, BalListQuery, BalPage, BalSummary, BalSummaryPage, GrantView } from '../registry/index.js';
import type { PublicationStateName } from '../publication/index.js';
import type { InactivityEvidence } from './inactivity-policy.js';
import type { WarningAudience } from './warning-recipients.js';

/**
 * What the lifecycle needs from the rest of the gateway, as interfaces: the composition root
 * (src/app/) adapts the publication service, the local delivery queue and the mail store to them.
 */

/** The directory's answer to one call, as the publication module reports it (journaled verbatim). */
export interface DirectoryAnswer {
  /** True when the directory did what was asked (or it was already so). */
  readonly ok: boolean;
  /** Status and short text of the directory's reply, or the error; never a secret. */
  readonly response: string;
}

/**
 * The publication module, seen from the lifecycle. Both calls may be slow (they reach the national
 * directory); neither should throw for a refusal (ok: false), only for a failure to ask at all.
 */
export interface LifecyclePublisher {
  /**
   * Removes the mailbox from the national directory with publication state `unpublished-inactive`.
   * Idempotent: a mailbox already unpublished answers ok. After a crash the daily run asks again
   * only when the publication state still says `published`.
   */
  unpublishInactive(address: string, evidence: InactivityEvidence): Promise<DirectoryAnswer>;
  /**
   * Publishes again a mailbox unpublished for inactivity, because it was just used. Must answer
   * ok: false, and change nothing, for a mailbox unpublished for any other reason (red list,
   * suspension, deletion, operator decision). May be called while the unpublication is still in
   * flight (the mailbox was used during the call): the latest request must win.
   */
  republish(address: string): Promise<DirectoryAnswer>;
}

/**
 * Sends a warning to one address through the delivery queue: into our store for our domains,
 * through the relay for an MSSanté address at another operator. Resolves once it is durable.
 */
export interface WarningDelivery {
  deliver(address: string, message: Buffer): Promise<void>;
}

/**
 * Who else reads a mailbox's warning (warning-recipients.ts): the owner's other addresses (PER),
 * the managers' own addresses (ORG, CAB). The composition root asks the registry and the national
 * extraction; an empty audience sends the warning to the mailbox only.
 */
export type WarningAudienceOf = (bal: Bal) => Promise<WarningAudience>;

/** The publication state of one mailbox, as the publication module keeps it. */
export interface PublicationView {
  readonly state: PublicationStateName;
  /** When the mailbox entered this state (ISO); a metadata update must not move it. */
  readonly since?: string;
  /** `listeRouge`: the mailbox must not be published. */
  readonly redListed?: boolean;
}

/** Reads publication states in batches (the daily run reads thousands of mailboxes at a time). */
export interface PublicationStateReader {
  /**
   * In the order of `bals`; undefined when the module has no state for a mailbox. The daily run
   * passes summaries (registry bal-summary.ts), not whole records: use no other field.
   */
  statesOf(bals: readonly BalSummary[]): Promise<ReadonlyArray<PublicationView | undefined>>;
}

/** The registry, as the lifecycle uses it; BalRegistry provides it. */
export interface LifecycleRegistry {
  get(address: string): Promise<Bal | null>;
  list(query: BalListQuery): Promise<BalPage>;
  /** Every mailbox, a page of summaries per round trip (what the daily run plans from). */
  summaries(query: { readonly cursor?: string; readonly limit?: number }): Promise<BalSummaryPage>;
  /** Removes the grants expired at `now`, journaling each (`registry.right.expired`). */
  purgeExpiredGrants(now?: Date): Promise<readonly GrantView[]>;
}

/** Latest use of mailboxes in batches; the registry's ActivityStore provides it. */
export interface ActivityReader {
  lastActivityOf(addresses: readonly string[]): Promise<ReadonlyArray<number | undefined>>;
}

/** Removes the mail of a deleted mailbox from the store, once its retention is over. Idempotent. */
export interface MailPurger {
  purge(address: string): Promise<void>;
}

export type CallOutcome = 'ok' | 'refused' | 'error';

/** Counts for the metrics; the composition root maps them to `mssgw_lifecycle_*_total`. */
export interface LifecycleObserver {
  unpublication(outcome: CallOutcome): void;
  republication(outcome: CallOutcome): void;
  warning(outcome: 'ok' | 'error'): void;
}
