import { REMOTE_REFUSALS } from './remote-verdict.js';

/**
 * Why an attempt to reach a remote operator failed before any mail was handed over. Trust refusals
 * come from judgeRemote; the rest are transport and lookup failures. `temporary` picks retry versus
 * DSN; `hostScoped` says whether the next MX of the same domain may still be tried.
 */
export const RELAY_FAILURES = {
  ...REMOTE_REFUSALS,
  domain_not_found: { temporary: false, summary: 'recipient domain does not exist (NXDOMAIN)' },
  dns_unavailable: { temporary: true, summary: 'MX lookup failed (SERVFAIL, timeout, refused)' },
  // RFC 7505: a "null MX" (priority 0, ".") says the domain accepts no mail.
  null_mx: { temporary: false, summary: 'recipient domain publishes a null MX' },
  connect_failed: { temporary: true, summary: 'remote MX unreachable' },
  timeout: { temporary: true, summary: 'remote MX did not answer in time' },
  greeting_refused: { temporary: true, summary: 'remote MX refused the session at the greeting' },
  ehlo_refused: { temporary: true, summary: 'remote MX refused EHLO' },
  starttls_refused: { temporary: true, summary: 'remote MX refused STARTTLS' },
  tls_failed: { temporary: true, summary: 'TLS handshake with the remote MX failed' },
  protocol_error: { temporary: true, summary: 'remote MX broke the SMTP protocol' },
} as const satisfies Record<string, { temporary: boolean; summary: string }>;

export type RelayFailureReason = keyof typeof RELAY_FAILURES;

/** Failures that concern the whole domain: trying another MX of it cannot help. */
const DOMAIN_SCOPED: ReadonlySet<RelayFailureReason> = new Set([
  'domain_not_whitelisted',
  'domain_not_found',
  'dns_unavailable',
  'null_mx',
]);

export interface RelayErrorDetails {
  readonly host?: string;
  readonly port?: number;
  readonly dn?: string;
  /** The remote reply line that caused the failure, e.g. `454 4.7.0 TLS not available`. */
  readonly reply?: string;
}

export class RelayError extends Error {
  readonly reason: RelayFailureReason;
  readonly temporary: boolean;
  readonly details: RelayErrorDetails;

  constructor(reason: RelayFailureReason, details: RelayErrorDetails = {}, options?: ErrorOptions) {
    super(RELAY_FAILURES[reason].summary, options);
    this.name = 'RelayError';
    this.reason = reason;
    this.temporary = RELAY_FAILURES[reason].temporary;
    this.details = details;
  }

  /** True when the next MX host of the same domain is worth trying. */
  get hostScoped(): boolean {
    return !DOMAIN_SCOPED.has(this.reason);
  }
}
