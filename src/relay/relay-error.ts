import { GatewayError } from '../errors/index.js';
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

export type RelayErrorDetails = {
  readonly host?: string;
  readonly port?: number;
  readonly dn?: string;
  /** The remote reply line that caused the failure, e.g. `454 4.7.0 TLS not available`. */
  readonly reply?: string;
};

/** A failed attempt; its catalogue code, and so `temporary`, follows RELAY_FAILURES[reason]. */
export class RelayError extends GatewayError {
  readonly reason: RelayFailureReason;
  declare readonly details: RelayErrorDetails;

  constructor(reason: RelayFailureReason, details: RelayErrorDetails = {}, options?: ErrorOptions) {
    const { temporary, summary } = RELAY_FAILURES[reason];
    super(temporary ? 'RELAY_ATTEMPT_FAILED' : 'RELAY_ATTEMPT_REFUSED', summary, details, options);
    this.name = 'RelayError';
    this.reason = reason;
  }

  /** True when the next MX host of the same domain is worth trying. */
  get hostScoped(): boolean {
    return !DOMAIN_SCOPED.has(this.reason);
  }
}

/**
 * RFC 3463 subject and detail (`X.<subject>.<detail>`) reported in DSNs for each failure; the class
 * (4 or 5) comes from whether the recipient is still retried.
 */
export const RELAY_STATUS_DETAIL: Readonly<Record<RelayFailureReason, string>> = {
  domain_not_whitelisted: '7.1',
  starttls_unavailable: '7.10',
  cert_untrusted: '7.5',
  cert_expired: '7.5',
  cert_revoked: '7.5',
  crl_unavailable: '7.5',
  dn_not_whitelisted_for_domain: '7.1',
  domain_not_found: '1.2',
  dns_unavailable: '4.3',
  null_mx: '1.10',
  connect_failed: '4.1',
  timeout: '4.2',
  greeting_refused: '4.1',
  ehlo_refused: '5.0',
  starttls_refused: '7.10',
  tls_failed: '7.5',
  protocol_error: '5.0',
};

/** Trust refusals: the whitelist or a certificate may be fixed soon (operator migrations). */
export const TRUST_FAILURES: ReadonlySet<RelayFailureReason> = new Set([
  'domain_not_whitelisted',
  'cert_untrusted',
  'cert_expired',
  'cert_revoked',
  'dn_not_whitelisted_for_domain',
]);
