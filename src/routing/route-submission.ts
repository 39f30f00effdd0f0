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

export interface TrustedDomains {
  dnsOf(domain: string): ReadonlySet<string>;
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
  if (whitelist.dnsOf(parsed.domain).size > 0)
    return { kind: 'relay', address: parsed.address, patient: false };
  return { kind: 'refuse', code: 'RELAY_DENIED', reason: 'relay_denied' };
}
