import type { Bal } from '../registry/index.js';
import { entryOf, sameEntry, type MailboxEntry } from './mailbox-entry.js';
import type {
  DirectoryOperation,
  Listed,
  PublicationStateName,
  UnpublishHold,
  UnpublishedReason,
} from './publication-state.js';

/**
 * The publication rules, as pure functions of the mailbox, its holds and what the directory holds
 * (ARCHITECTURE.md §5 "Lifecycle"; MSSANTE.md "Mailboxes", "Publication (write)"):
 * a live mailbox is published unless it is red-listed or held; suspending or deleting it
 * unpublishes it. The worker reads the mailbox when it runs, so the latest change always wins.
 */

export type Desired =
  | { readonly target: 'published'; readonly entry: MailboxEntry }
  | { readonly target: 'unpublished'; readonly reason: UnpublishedReason };

/** Where the mailbox should be. `null` (no such mailbox any more) counts as deleted. */
export function desiredFor(bal: Bal | null, holds: ReadonlySet<UnpublishHold>): Desired {
  const reason = unpublishedReason(bal, holds);
  if (reason !== undefined || bal === null) return { target: 'unpublished', reason: reason ?? 'deleted' };
  return { target: 'published', entry: entryOf(bal) };
}

function unpublishedReason(
  bal: Bal | null,
  holds: ReadonlySet<UnpublishHold>,
): UnpublishedReason | undefined {
  if (bal === null || bal.status === 'deleted') return 'deleted';
  if (bal.status === 'suspended') return 'suspended';
  if (bal.listeRouge === true) return 'red-list';
  if (holds.has('operator')) return 'operator';
  if (holds.has('inactive')) return 'inactive';
  return undefined;
}

/** The state a desired outcome is shown as once reached. */
export function reachedState(desired: Desired): Exclude<PublicationStateName, 'pending' | 'failed'> {
  if (desired.target === 'published') return 'published';
  return desired.reason === 'inactive' ? 'unpublished-inactive' : 'unpublished';
}

export type Step =
  /** The directory already agrees: record the state, call nobody. */
  { readonly kind: 'settle' } | { readonly kind: 'call'; readonly operation: DirectoryOperation };

/**
 * What to ask of the directory. An entry we are unsure of (`listed` unknown, after a call that got
 * no answer) is inserted or deleted again, never assumed: both are safe to repeat.
 */
export function nextStep(desired: Desired, listed: Listed, published: MailboxEntry | undefined): Step {
  if (desired.target === 'unpublished') {
    return listed === 'no' ? { kind: 'settle' } : { kind: 'call', operation: 'delete' };
  }
  if (listed !== 'yes' || published === undefined) return { kind: 'call', operation: 'insert' };
  return sameEntry(published, desired.entry) ? { kind: 'settle' } : { kind: 'call', operation: 'replace' };
}

/**
 * What the directory may hold after a call that failed. A refusal changed nothing. A call that got
 * no usable answer may or may not have been applied, unless it never left (connection refused);
 * a replace keeps the entry listed either way.
 */
export function listedAfterFailure(
  operation: DirectoryOperation,
  before: Listed,
  failure: { readonly temporary: boolean; readonly sent: boolean },
): Listed {
  if (!failure.temporary || !failure.sent) return before;
  if (operation === 'replace') return before;
  const after: Listed = operation === 'insert' ? 'yes' : 'no';
  return before === after ? before : 'unknown';
}
