import type { ErrorCode } from '../errors/index.js';
import { parseAddress } from '../shared/index.js';
import { type TrustedDomains, inTrustSpace } from './route-submission.js';

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

/**
 * First step, no I/O: is this recipient one of ours at all? A domain that is not is refused either
 * way; the reply says whether the peer should have gone to another operator's MX (in the trust
 * space) or has no MSSante business with it at all.
 */
export function routeByDomain(
  address: string,
  ourDomains: ReadonlySet<string>,
  trust: TrustedDomains,
): RecipientDecision | { readonly kind: 'lookup'; readonly address: string } {
  const parsed = parseAddress(address);
  if (!parsed) return { kind: 'refuse', code: 'BAD_ADDRESS_SYNTAX', reason: 'bad_address' };
  if (!ourDomains.has(parsed.domain)) {
    return inTrustSpace(parsed.domain, trust)
      ? { kind: 'refuse', code: 'RELAY_NOT_OFFERED', reason: 'relay_not_offered' }
      : { kind: 'refuse', code: 'RELAY_DENIED', reason: 'relay_denied' };
  }
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
