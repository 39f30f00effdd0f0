import type { ErrorCode } from '../errors/index.js';
import { parseAddress } from '../shared/index.js';

/**
 * Pure routing decisions (ARCHITECTURE.md §3 routing/). The MX port only ever delivers locally:
 * a recipient outside our domains is refused, never relayed.
 */
export type RecipientDecision =
  | { readonly kind: 'local'; readonly address: string }
  | { readonly kind: 'refuse'; readonly code: ErrorCode; readonly reason: string };

export interface MailboxStatusView {
  readonly status: 'active' | 'suspended' | 'deleted';
}

/** First step, no I/O: is this recipient one of ours at all? */
export function routeByDomain(
  address: string,
  ourDomains: ReadonlySet<string>,
): RecipientDecision | { readonly kind: 'lookup'; readonly address: string } {
  const parsed = parseAddress(address);
  if (!parsed) return { kind: 'refuse', code: 'BAD_ADDRESS_SYNTAX', reason: 'bad_address' };
  if (!ourDomains.has(parsed.domain)) return { kind: 'refuse', code: 'RELAY_DENIED', reason: 'relay_denied' };
  return { kind: 'lookup', address: parsed.address };
}

/** Second step, with the registry's answer for the address. */
export function routeLocal(address: string, bal: MailboxStatusView | null): RecipientDecision {
  if (!bal || bal.status === 'deleted')
    return { kind: 'refuse', code: 'RECIPIENT_UNKNOWN', reason: 'unknown_mailbox' };
  if (bal.status === 'suspended')
    return { kind: 'refuse', code: 'RECIPIENT_SUSPENDED', reason: 'suspended_mailbox' };
  return { kind: 'local', address };
}
