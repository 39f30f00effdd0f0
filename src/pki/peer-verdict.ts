import type { X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../errors/index.js';
import { type DnAttribute, canonicalDn } from './dn.js';

/**
 * Who is on the other end of an inter-operator connection (ARCHITECTURE.md §5, MX path). A pure
 * function of what the TLS layer saw and of the whitelist: unit-tested with tables, and the same
 * answer for a fresh and a resumed TLS session.
 */
export interface PeerTlsFacts {
  readonly secure: boolean;
  /** Subject attributes of the client certificate, absent when none was presented. */
  readonly subject?: readonly DnAttribute[];
  /** OpenSSL's verdict on chain, validity and revocation (`socket.authorized`). */
  readonly authorized: boolean;
  /** OpenSSL's error code when not authorized (`socket.authorizationError`). */
  readonly authorizationError?: string;
  /**
   * Whether the leaf was signed by one of our configured authorities. With rejectUnauthorized off,
   * OpenSSL reports its *last* error: a foreign chain that brings its own root ends on
   * UNABLE_TO_GET_CRL, which must not read as "our CRL is missing" (a temporary refusal).
   */
  readonly issuedByTrustedAuthority?: boolean;
}

export interface WhitelistView {
  domainsOf(canonicalDn: string): ReadonlySet<string>;
}

export type PeerVerdict =
  | { readonly ok: true; readonly dn: string; readonly domains: ReadonlySet<string> }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string; readonly dn?: string };

/** OpenSSL verification codes (X509_V_ERR_*) by what they mean for the peer. */
const EXPIRED = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERROR_IN_CERT_NOT_BEFORE_FIELD',
  'ERROR_IN_CERT_NOT_AFTER_FIELD',
]);
const REVOKED = new Set(['CERT_REVOKED']);
/** Our side cannot decide: the revocation list is missing, expired or unusable. Temporary. */
const CRL_PROBLEM = new Set([
  'UNABLE_TO_GET_CRL',
  'CRL_HAS_EXPIRED',
  'CRL_NOT_YET_VALID',
  'UNABLE_TO_GET_CRL_ISSUER',
  'UNABLE_TO_DECRYPT_CRL_SIGNATURE',
  'CRL_SIGNATURE_FAILURE',
  'ERROR_IN_CRL_LAST_UPDATE_FIELD',
  'ERROR_IN_CRL_NEXT_UPDATE_FIELD',
  'DIFFERENT_CRL_SCOPE',
]);

export type VerifyFailure = 'cert_untrusted' | 'cert_expired' | 'cert_revoked' | 'crl_unavailable';

const VERIFY_REFUSALS: Record<VerifyFailure, { code: ErrorCode; reason: VerifyFailure }> = {
  cert_untrusted: { code: 'CERT_UNTRUSTED', reason: 'cert_untrusted' },
  cert_expired: { code: 'CERT_EXPIRED', reason: 'cert_expired' },
  cert_revoked: { code: 'CERT_REVOKED', reason: 'cert_revoked' },
  crl_unavailable: { code: 'CRL_UNAVAILABLE', reason: 'crl_unavailable' },
};

/**
 * What a certificate OpenSSL did not authorize means, on either side of a connection (our MX and
 * submission judging a client, the relay judging a remote server). A leaf not issued by one of our
 * authorities is untrusted whatever the last OpenSSL error says (a foreign chain bringing its own
 * root ends on UNABLE_TO_GET_CRL, which must not read as "our CRL is missing").
 */
export function classifyVerifyError(
  authorizationError: string | undefined,
  issuedByTrustedAuthority?: boolean,
): VerifyFailure {
  if (issuedByTrustedAuthority === false) return 'cert_untrusted';
  const err = authorizationError ?? 'UNKNOWN';
  if (EXPIRED.has(err)) return 'cert_expired';
  if (REVOKED.has(err)) return 'cert_revoked';
  if (CRL_PROBLEM.has(err)) return 'crl_unavailable';
  return 'cert_untrusted';
}

export function judgePeer(facts: PeerTlsFacts, whitelist: WhitelistView): PeerVerdict {
  if (!facts.secure) return { ok: false, code: 'TLS_REQUIRED', reason: 'tls_required' };
  if (!facts.subject || facts.subject.length === 0)
    return { ok: false, code: 'CERT_MISSING', reason: 'cert_missing' };
  const dn = canonicalDn(facts.subject);
  if (!facts.authorized) {
    const refusal =
      VERIFY_REFUSALS[classifyVerifyError(facts.authorizationError, facts.issuedByTrustedAuthority)];
    return { ok: false, ...refusal, dn };
  }
  const domains = whitelist.domainsOf(dn);
  if (domains.size === 0)
    return { ok: false, code: 'OPERATOR_NOT_WHITELISTED', reason: 'operator_not_whitelisted', dn };
  return { ok: true, dn, domains };
}

/** True when one of `authorities` issued and signed `leaf`. */
export function issuedByOneOf(leaf: X509Certificate, authorities: readonly X509Certificate[]): boolean {
  return authorities.some((a) => {
    try {
      return leaf.checkIssued(a) && leaf.verify(a.publicKey);
    } catch {
      return false;
    }
  });
}
