import type { ErrorCode } from '../errors/index.js';
import { PATIENT_DOMAIN, isValidIns } from './patient-address.js';
import { parseAddress } from '../shared/index.js';

/**
 * Where a submitted recipient goes (ARCHITECTURE.md §5 "Submission from a client"): a mailbox of
 * ours (looked up next), another operator's whitelisted domain or a patient mailbox (relay), or
 * nowhere — the gateway is never an open relay.
 */
export type SubmissionRoute =
  | { readonly kind: 'lookup'; readonly address: string }
  | { readonly kind: 'relay'; readonly address: string; readonly patient: boolean }
  | { readonly kind: 'refuse'; readonly code: ErrorCode; readonly reason: string };

/** The trust space's domains (the national whitelist): a domain is in it when some operator DN serves it. */
export interface TrustedDomains {
  dnsOf(domain: string): ReadonlySet<string>;
}

/** A domain of another MSSante operator: whitelisted, or the national patient domain. */
export function inTrustSpace(domain: string, trust: TrustedDomains): boolean {
  return domain === PATIENT_DOMAIN || trust.dnsOf(domain).size > 0;
}

export function routeSubmission(
  address: string,
  ourDomains: ReadonlySet<string>,
  whitelist: TrustedDomains,
): SubmissionRoute {
  const parsed = parseAddress(address);
  if (!parsed) return { kind: 'refuse', code: 'BAD_ADDRESS_SYNTAX', reason: 'bad_address' };
  if (ourDomains.has(parsed.domain)) return { kind: 'lookup', address: parsed.address };
  if (parsed.domain === PATIENT_DOMAIN) {
    return isValidIns(parsed.local)
      ? { kind: 'relay', address: parsed.address, patient: true }
      : { kind: 'refuse', code: 'PATIENT_ADDRESS_INVALID', reason: 'bad_patient_address' };
  }
  if (inTrustSpace(parsed.domain, whitelist))
    return { kind: 'relay', address: parsed.address, patient: false };
  return { kind: 'refuse', code: 'RECIPIENT_OUTSIDE_TRUST_SPACE', reason: 'outside_trust_space' };
}
