import type { Actor } from './actor.js';
import type { Bal } from './bal.js';

/** What happened to a mailbox; `updated` is a change of its published metadata. */
export type BalChangeKind = 'created' | 'updated' | 'suspended' | 'resumed' | 'deleted';

export interface BalChange {
  readonly kind: BalChangeKind;
  /** The mailbox as the change left it. */
  readonly bal: Bal;
  readonly actor: Actor;
}

/**
 * Told of every committed change of a mailbox, after the write and before the caller gets its
 * answer: the publication service queues the national directory update here, so `bal show` right
 * after a change already says a publication is pending. The change is made whatever the observer
 * does; it must not throw (a rejection is journaled as `registry.observer.failed` and otherwise
 * ignored) and catches up by itself when it could not act.
 */
export interface BalObserver {
  balChanged(change: BalChange): Promise<void>;
}
