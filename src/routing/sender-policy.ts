import type { Access } from '../auth/index.js';
import type { ErrorCode } from '../errors/index.js';
import { addressKey } from '../shared/index.js';

/**
 * Who may appear as sender (ARCHITECTURE.md §4 "Sending"): the envelope sender and `From:` must be
 * the mailbox the caller opened; a delegate sends with `From:` the owner's mailbox and `Sender:`
 * a mailbox of the delegate's own (added when absent). Pure; addresses are compared in canonical form (shared/address.ts).
 *
 * "Her own" mailboxes are those she owns here and the MSSanté addresses the national extraction lists
 * for her national id at any operator (the composition root's `ownMailboxes`). A delegate with none
 * at all (issue #13: most secretaries) may still send for the owner: the gateway then writes no
 * `Sender:` (it would have to name an address she does not own, which is never done) and adds
 * `X-MSSGW-Delegate: <her national id>` instead, so that the recipient sees that someone else sent
 * it and who; the audit journal records both identities as for every delegated use.
 */
/** The header naming a delegate who has no MSSanté address (see above). */
export const DELEGATE_HEADER = 'X-MSSGW-Delegate';

export type SenderDecision =
  | {
      readonly ok: true;
      readonly addSender?: string;
      /** National id of a delegate who has no MSSanté address: for `X-MSSGW-Delegate:`. */
      readonly addDelegate?: string;
    }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string };

export function checkEnvelopeSender(access: Access, mailFrom: string): SenderDecision {
  if (!access.scopes.has('send')) return { ok: false, code: 'SEND_NOT_AUTHORISED', reason: 'read_only' };
  // The null reverse-path carries MDNs (RFC 8098 §3) from the mailbox's own client.
  if (mailFrom !== '' && addressKey(mailFrom) !== addressKey(access.bal)) {
    return { ok: false, code: 'SENDER_NOT_ALLOWED', reason: 'envelope_sender' };
  }
  return { ok: true };
}

export interface HeaderSenders {
  /** Addresses of the `From:` header. */
  readonly from: readonly string[];
  /** Addresses of the `Sender:` header, undefined when absent. */
  readonly sender: readonly string[] | undefined;
}

/** `ownMailboxes`: mailboxes the authenticated principal owns (for a delegate's `Sender:`). */
export function checkHeaderSenders(
  access: Access,
  headers: HeaderSenders,
  ownMailboxes: readonly string[],
): SenderDecision {
  const bal = addressKey(access.bal);
  const from = headers.from.map(addressKey);
  if (from.length !== 1 || from[0] !== bal)
    return { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'from_header' };
  const own = ownMailboxes.map(addressKey);
  const sender = headers.sender?.map(addressKey);
  if (access.right !== 'delegate') {
    if (sender && (sender.length !== 1 || (sender[0] !== bal && !own.includes(sender[0]!)))) {
      return { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'sender_header' };
    }
    return { ok: true };
  }
  if (sender) {
    return sender.length === 1 && own.includes(sender[0]!)
      ? { ok: true }
      : { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'sender_header' };
  }
  const first = own[0];
  if (first) return { ok: true, addSender: first };
  return access.principal.kind === 'person'
    ? { ok: true, addDelegate: access.principal.nationalId }
    : { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'delegate_without_mailbox' };
}
