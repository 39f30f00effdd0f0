import type { Bal, BalType } from '../registry/index.js';

/**
 * What the national directory holds about one of our mailboxes: its address (the `telecom` value),
 * the owner whose resource carries it, and the `as-ext-mailbox-mss-metadata` fields. A red-listed
 * mailbox has no entry: it is never published.
 */
export interface MailboxEntry {
  readonly address: string;
  readonly type: BalType;
  /** National person id (PER) or national structure id: finds the resource in the directory. */
  readonly owner: string;
  readonly description?: string;
  readonly service?: string;
  readonly responsible?: string;
}

/** Which mailbox, on which resource: enough to remove an entry. */
export type DirectoryTarget = Pick<MailboxEntry, 'address' | 'type' | 'owner'>;

export function entryOf(bal: Bal): MailboxEntry {
  return {
    address: bal.address,
    type: bal.type,
    owner: bal.owner,
    ...(bal.description === undefined ? {} : { description: bal.description }),
    ...(bal.service === undefined ? {} : { service: bal.service }),
    ...(bal.responsible === undefined ? {} : { responsible: bal.responsible }),
  };
}

export function sameEntry(a: MailboxEntry, b: MailboxEntry): boolean {
  return (
    a.address === b.address &&
    a.type === b.type &&
    a.owner === b.owner &&
    a.description === b.description &&
    a.service === b.service &&
    a.responsible === b.responsible
  );
}
