import { addressKey } from '../shared/index.js';

/**
 * Where the inactivity warning of one mailbox goes (issue #13 item 5). The mailbox itself is not
 * always read: its owner may live in another mailbox (here or at another operator), and nobody may
 * open an organisation's mailbox for weeks. So the warning also goes to the owner's other MSSanté
 * addresses and, for an ORG or CAB mailbox, to its managers' own addresses. Each recipient is a
 * channel of its own, recorded and journaled once per inactivity period.
 */
export type WarningChannel = 'mailbox' | 'owner_address' | 'manager_address';

export interface WarningRecipient {
  readonly channel: WarningChannel;
  /** Canonical address the warning is sent to. */
  readonly address: string;
}

/** The people to tell besides the mailbox, as the composition root finds them (lifecycle-ports.ts). */
export interface WarningAudience {
  /** The owner's MSSanté addresses: ours and those the national extraction lists elsewhere. */
  readonly owner: readonly string[];
  /** The addresses of each manager of a co-managed (ORG, CAB) mailbox, all managers together. */
  readonly managers: readonly string[];
}

/**
 * The recipients of one warning, in sending order: the mailbox, then the owner's addresses, then
 * the managers'. Pure. Each address once (an address both the owner's and a manager's is sent as
 * the owner's), the mailbox never twice, and what is not an address (no `@`) is left out.
 */
export function warningRecipients(mailbox: string, audience: WarningAudience): WarningRecipient[] {
  const self = addressKey(mailbox);
  const seen = new Set([self]);
  const out: WarningRecipient[] = [{ channel: 'mailbox', address: self }];
  const add = (channel: WarningChannel, addresses: readonly string[]) => {
    for (const raw of addresses) {
      const address = addressKey(raw);
      const at = address.lastIndexOf('@');
      if (at <= 0 || at === address.length - 1 || seen.has(address)) continue;
      seen.add(address);
      out.push({ channel, address });
    }
  };
  add('owner_address', audience.owner);
  add('manager_address', audience.managers);
  return out;
}
