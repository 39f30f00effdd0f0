import type { X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../errors/index.js';
import {
  attributesFromSubject,
  canonicalDn,
  dnAttribute,
  issuedByOneOf,
  judgePeer,
  type WhitelistView,
} from '../pki/index.js';
import { parseNationalId } from './national-id.js';
import type { Principal } from './types.js';

/**
 * Who a client certificate proves (ARCHITECTURE.md §4, MSSANTE.md "Client access"): a person with a
 * CPS-type certificate, or software with an organisation certificate (APP mailboxes, SASL EXTERNAL).
 * A pure function of the certificate, OpenSSL's verdict, our authorities and the time.
 *
 * **Which authority certifies people.** IGC-Santé names its people authorities with `PERSONNES`
 * (`AC IGC-SANTE ELEMENTAIRE PERSONNES`, `... FORT PERSONNES`, and their `TEST` twins), its
 * organisation ones with `ORGANISATIONS`. The configuration has no key for it, so the rule is: a
 * certificate whose issuer CN contains the word `PERSONNES` is a person's; any other one is an
 * organisation's or software's. The issuer name is trusted because OpenSSL verified the chain.
 */

export type CertificatePrincipal = Extract<Principal, { kind: 'person' } | { kind: 'application' }>;

export interface ClientCertificateFacts {
  readonly certificate: X509Certificate;
  /** OpenSSL's verdict on chain, validity and revocation (`socket.authorized`). */
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

export type CertificateVerdict =
  | { readonly ok: true; readonly principal: CertificatePrincipal }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string; readonly dn?: string };

const PEOPLE_AUTHORITY = /\bPERSONNES\b/i;
/** RFC 5280 §4.2.1.12 id-kp-clientAuth. */
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';

/**
 * The chain verdict is the MX path's (judgePeer), so both paths read OpenSSL's codes alike; client
 * certificates are not operator certificates, so no whitelist applies to them.
 */
const NO_WHITELIST: WhitelistView = { domainsOf: () => new Set(['*']) };

export function certificatePrincipal(
  facts: ClientCertificateFacts,
  authorities: readonly X509Certificate[],
  now: Date,
): CertificateVerdict {
  const { certificate } = facts;
  const legacy = certificate.toLegacyObject();
  const subject = attributesFromSubject(legacy.subject);
  const dn = canonicalDn(subject);
  const chain = judgePeer(
    {
      secure: true,
      subject,
      authorized: facts.authorized,
      ...(facts.authorizationError === undefined ? {} : { authorizationError: facts.authorizationError }),
      ...(facts.authorized ? {} : { issuedByTrustedAuthority: issuedByOneOf(certificate, authorities) }),
    },
    NO_WHITELIST,
  );
  if (!chain.ok) return { ok: false, code: chain.code, reason: chain.reason, dn };
  // OpenSSL checked the dates at the handshake; a long or resumed session may outlive them.
  if (now < new Date(certificate.validFrom) || now > new Date(certificate.validTo)) {
    return { ok: false, code: 'CERT_EXPIRED', reason: 'cert_expired', dn };
  }
  const purposes = certificate.keyUsage as string[] | undefined;
  if (purposes !== undefined && !purposes.includes(CLIENT_AUTH)) {
    return { ok: false, code: 'CERT_UNTRUSTED', reason: 'cert_purpose', dn };
  }
  const issuerCn = dnAttribute(attributesFromSubject(legacy.issuer), 'CN') ?? '';
  if (!PEOPLE_AUTHORITY.test(issuerCn)) {
    return { ok: true, principal: { kind: 'application', dn, fingerprint: certificate.fingerprint256 } };
  }
  // CPS-type certificates carry the national id in the X.520 serialNumber, and often in the CN.
  const nationalId =
    parseNationalId(dnAttribute(subject, 'serialNumber')) ?? parseNationalId(dnAttribute(subject, 'CN'));
  if (nationalId === undefined) {
    return { ok: false, code: 'AUTH_CREDENTIALS_INVALID', reason: 'cert_no_national_id', dn };
  }
  return { ok: true, principal: { kind: 'person', nationalId, via: 'certificate', dn } };
}
