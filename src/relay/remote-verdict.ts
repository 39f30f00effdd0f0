import { type DnAttribute, canonicalDn, classifyVerifyError } from '../pki/index.js';

/**
 * Whether a remote MX may receive mail for a recipient domain (ARCHITECTURE.md §5, outbound relay).
 * A pure function of what our TLS client saw and of the whitelist, unit-tested with tables: the
 * remote certificate must chain to one of our IGC-Santé authorities, be valid and not revoked, and
 * its subject DN must be registered in the whitelist *for the recipient's domain* (MSSANTE.md "The
 * trust space"), not merely be some whitelisted operator.
 */
export interface RemoteTlsFacts {
  /** STARTTLS was advertised and the TLS handshake completed. */
  readonly secure: boolean;
  /** Subject attributes of the server certificate, absent when none was presented. */
  readonly subject?: readonly DnAttribute[];
  /** OpenSSL's verdict on chain, validity and revocation (`socket.authorized`). */
  readonly authorized: boolean;
  /** OpenSSL's error code when not authorized (`socket.authorizationError`). */
  readonly authorizationError?: string;
  /**
   * Whether the leaf was signed by one of our configured authorities and its chain ends at one of
   * our roots (trustedChain). With rejectUnauthorized off, OpenSSL reports its *last* error: a
   * foreign chain, or ours whose root is no longer configured, can end on a CRL error, which must
   * not read as "our CRL is missing" (a temporary refusal) — same trap as on the MX side.
   */
  readonly issuedByTrustedAuthority?: boolean;
}

export interface RemoteWhitelistView {
  /** Canonical DNs registered for this domain (empty when the domain is not whitelisted). */
  dnsOf(domain: string): ReadonlySet<string>;
}

/**
 * Why a remote MX is refused, and whether retrying later can help. One table, so the queue picks
 * the retry policy and the metric label from the reason, never from message text.
 */
export const REMOTE_REFUSALS = {
  domain_not_whitelisted: { temporary: false, summary: 'recipient domain is not in the whitelist' },
  // RFC 8461 §5 and RFC 7672 §2.2: a missing STARTTLS may be an on-path downgrade; never send in
  // plain text, defer and retry (the DSN comes when the message expires).
  starttls_unavailable: { temporary: true, summary: 'remote MX does not offer STARTTLS' },
  cert_untrusted: {
    temporary: false,
    summary: 'remote certificate does not chain to a trusted IGC-Santé authority',
  },
  cert_expired: { temporary: false, summary: 'remote certificate outside its validity period' },
  cert_revoked: { temporary: false, summary: 'remote certificate revoked' },
  // Our side cannot decide: the revocation list is missing, expired or unusable.
  crl_unavailable: { temporary: true, summary: 'no current revocation list for the issuing authority' },
  dn_not_whitelisted_for_domain: {
    temporary: false,
    summary: 'remote certificate DN is not registered for the recipient domain',
  },
} as const satisfies Record<string, { temporary: boolean; summary: string }>;

export type RemoteRefusalReason = keyof typeof REMOTE_REFUSALS;

export type RemoteVerdict =
  | { readonly ok: true; readonly dn: string; readonly domain: string }
  | {
      readonly ok: false;
      readonly reason: RemoteRefusalReason;
      readonly temporary: boolean;
      readonly dn?: string;
    };

function refuse(reason: RemoteRefusalReason, dn?: string): RemoteVerdict {
  const { temporary } = REMOTE_REFUSALS[reason];
  return dn === undefined ? { ok: false, reason, temporary } : { ok: false, reason, temporary, dn };
}

/** Reason for a certificate OpenSSL did not authorize. */
function certificateRefusal(facts: RemoteTlsFacts): RemoteRefusalReason {
  return classifyVerifyError(facts.authorizationError, facts.issuedByTrustedAuthority);
}

export function judgeRemote(
  facts: RemoteTlsFacts,
  whitelist: RemoteWhitelistView,
  recipientDomain: string,
): RemoteVerdict {
  const allowed = whitelist.dnsOf(recipientDomain);
  if (allowed.size === 0) return refuse('domain_not_whitelisted');
  if (!facts.secure) return refuse('starttls_unavailable');
  if (!facts.subject || facts.subject.length === 0) return refuse('cert_untrusted');
  const dn = canonicalDn(facts.subject);
  if (!facts.authorized) return refuse(certificateRefusal(facts), dn);
  if (!allowed.has(dn)) return refuse('dn_not_whitelisted_for_domain', dn);
  return { ok: true, dn, domain: recipientDomain };
}
