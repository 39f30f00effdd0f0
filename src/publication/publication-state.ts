import type { ErrorCode } from '../errors/index.js';
import type { MailboxEntry } from './mailbox-entry.js';

/**
 * The publication state of one mailbox, as `mssgw bal show` and the admin API show it. The state is
 * only ever written after the national directory answered (or when no call is needed), so
 * `published` always means the directory accepted our entry.
 *
 * - `pending`: the mailbox is on its way in or out of the directory (`target` says which way);
 * - `published`: the directory holds our entry (`published` is what it holds);
 * - `unpublished`: the directory does not hold it, for `reason` (red list, suspension, deletion, an
 *   operator's hold);
 * - `unpublished-inactive`: the same, only because the mailbox was unused too long (issue #6); a
 *   return of activity republishes it, unless another reason applies by then;
 * - `failed`: the directory refused the change (`error`), or stayed unreachable through every retry.
 */
export const PUBLICATION_STATES = [
  'pending',
  'published',
  'unpublished',
  'unpublished-inactive',
  'failed',
] as const;
export type PublicationStateName = (typeof PUBLICATION_STATES)[number];

/** Why a mailbox is not in the directory, most compelling first (the first that applies is shown). */
export const UNPUBLISHED_REASONS = ['deleted', 'suspended', 'red-list', 'operator', 'inactive'] as const;
export type UnpublishedReason = (typeof UNPUBLISHED_REASONS)[number];

/**
 * Holds put on a live mailbox through `unpublish(address, reason)`: `inactive` by the lifecycle job
 * (45 days without use), `operator` by hand. Each is lifted only by `republish` with the same reason.
 */
export const UNPUBLISH_HOLDS = ['inactive', 'operator'] as const;
export type UnpublishHold = (typeof UNPUBLISH_HOLDS)[number];

/** Whether the directory holds our entry, as far as its answers tell. */
export type Listed = 'yes' | 'no' | 'unknown';

/**
 * One change of the mailbox `telecom` in the directory: `insert` (add our entry, replacing any
 * older copy), `replace` (change the metadata of the entry), `delete` (remove it).
 */
export const DIRECTORY_OPERATIONS = ['insert', 'replace', 'delete'] as const;
export type DirectoryOperation = (typeof DIRECTORY_OPERATIONS)[number];

/** Outcome of a directory call: its metric label and journal field. */
export const CALL_OUTCOMES = [
  'ok',
  'not_found',
  'ambiguous',
  'entry_missing',
  'rejected',
  'unavailable',
] as const;
export type CallOutcome = (typeof CALL_OUTCOMES)[number];

/** The last directory call for a mailbox and its answer. */
export interface DirectoryCallRecord {
  readonly operation: DirectoryOperation;
  readonly outcome: CallOutcome;
  /** HTTP status of the answer; absent when there was none (network error, timeout). */
  readonly status?: number;
  readonly at: string;
  /** What the directory said, shortened (problem text, OperationOutcome diagnostics). */
  readonly detail?: string;
}

export interface PublicationError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly at: string;
}

export interface PublicationState {
  readonly address: string;
  readonly state: PublicationStateName;
  /** When the mailbox entered this state (ISO). */
  readonly since: string;
  /** Where the latest change heads (shown for `pending` and `failed`). */
  readonly target?: 'published' | 'unpublished';
  /** Unpublished states (and a pending or failed unpublication): why. */
  readonly reason?: UnpublishedReason;
  /** `failed`, or a pending change being retried: the last error. */
  readonly error?: PublicationError;
  readonly listed: Listed;
  readonly holds: readonly UnpublishHold[];
  /** Failed attempts at the current change. */
  readonly attempts: number;
  /**
   * A change is owed to the directory (queued, being worked or retried). A published mailbox whose
   * metadata changed stays `published` meanwhile: the directory holds it, with the old metadata.
   */
  readonly changePending: boolean;
  readonly lastCall?: DirectoryCallRecord;
  /** The entry the directory holds, as we last wrote it (when `listed` is yes). */
  readonly published?: MailboxEntry;
  readonly updatedAt: string;
}

export function isUnpublishHold(value: string): value is UnpublishHold {
  return (UNPUBLISH_HOLDS as readonly string[]).includes(value);
}
