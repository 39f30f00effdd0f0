import type { Bal } from '../registry/index.js';
import { DAY_MS } from './lifecycle-time.js';

/**
 * Deleted mailboxes keep their mail for `lifecycle.deletedMailRetentionDays` (issue #6: "deletion
 * keeps the mail for a configurable retention, then purges it"); the registry keeps the tombstone
 * for ever, so the address is never reused. Pure.
 */
export interface MailPurgeDecision {
  readonly action: 'purge-mail';
  readonly address: string;
  /** ISO instant of the deletion. */
  readonly deletedAt: string;
  /** ISO instant from which the mail may go. */
  readonly purgeAfter: string;
  readonly retentionDays: number;
}

/** The purge due for a deleted mailbox at `now`, or undefined (not deleted, kept, already purged). */
export function mailPurgeDue(
  bal: Pick<Bal, 'address' | 'status' | 'deletedAt'>,
  now: number,
  retentionDays: number,
  alreadyPurged: boolean,
): MailPurgeDecision | undefined {
  if (bal.status !== 'deleted' || bal.deletedAt === undefined || alreadyPurged) return undefined;
  const deletedAt = Date.parse(bal.deletedAt);
  if (Number.isNaN(deletedAt)) return undefined;
  const purgeAfter = deletedAt + retentionDays * DAY_MS;
  if (now < purgeAfter) return undefined;
  return {
    action: 'purge-mail',
    address: bal.address,
    deletedAt: bal.deletedAt,
    purgeAfter: new Date(purgeAfter).toISOString(),
    retentionDays,
  };
}
