import type { Access } from '../auth/index.js';
import type { ErrorCode } from '../errors/index.js';
import { addressKey } from '../shared/index.js';

/**
 * Who may appear as sender (ARCHITECTURE.md §4 "Sending"): the envelope sender and `From:` must be
 * the mailbox the caller opened; a delegate sends with `From:` the owner's mailbox and `Sender:`
 * a mailbox of the delegate's own (added when absent). Pure; addresses are compared in canonical form (shared/address.ts).
 */
export type SenderDecision =
  | { readonly ok: true; readonly addSender?: string }
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
  return first
    ? { ok: true, addSender: first }
    : { ok: false, code: 'FROM_NOT_ALLOWED', reason: 'delegate_without_mailbox' };
}
