import type { ErrorCode } from './error-codes.js';

/**
 * The `outcome` label of every login metric (`mssgw_auth_attempts_total`, `mssgw_imap_logins_total`):
 * `ok`, or the catalogue code of the refusal in lower case, its `AUTH_` prefix dropped
 * (`AUTH_TOKEN_EXPIRED` → `token_expired`, `STORE_UNAVAILABLE` → `store_unavailable`). One
 * vocabulary, so that the two counters can be read against each other; bounded, since codes are.
 * The finer reason (which claim failed, …) is in the journal and the log, not in a label.
 */
export function loginOutcomeLabel(outcome: ErrorCode | 'ok'): string {
  return outcome === 'ok' ? 'ok' : outcome.replace(/^AUTH_/, '').toLowerCase();
}
