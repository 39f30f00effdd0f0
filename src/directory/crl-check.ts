import { type X509Certificate, verify } from 'node:crypto';
import { normalizeDn } from '../pki/index.js';
import { DER, DerError, type DerNode, children, isTime, oidOf, readDer, timeOf } from './der.js';
import { refusal } from './mirror-outcome.js';

/**
 * What the gateway needs to know about a revocation list (RFC 5280 §5.1) before using it: who
 * signed it, whether the signature holds, and its dates. Parsed from the exact DER the authority
 * published; the signature is checked by OpenSSL (node:crypto) over the TBSCertList bytes as sent.
 */
export interface CrlFacts {
  readonly der: Buffer;
  /** DER of the issuer Name, compared byte for byte with the authorities' subjects. */
  readonly issuerName: Buffer;
  readonly thisUpdate: Date;
  /** Absent only in CRLs that break RFC 5280 §5.1.2.5 (conforming issuers always set it). */
  readonly nextUpdate?: Date;
  readonly revokedCount: number;
  readonly tbs: Buffer;
  readonly signatureAlgorithm: string;
  readonly signature: Buffer;
}

/** Signature algorithms accepted on a CRL, by OID, with the digest node:crypto verifies with. */
const SIGNATURE_DIGESTS: Readonly<Record<string, string>> = {
  '1.2.840.113549.1.1.11': 'sha256', // sha256WithRSAEncryption (IGC-Santé)
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.2.840.10045.4.3.2': 'sha256', // ecdsa-with-SHA256
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
};

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/;

/** DER bytes of a CRL given as DER or PEM. */
export function crlDer(data: Buffer): Buffer {
  const pem = PEM_CRL.exec(data.toString('latin1'));
  return pem ? Buffer.from(pem[1]!.replace(/\s+/g, ''), 'base64') : data;
}

function malformed(why: string) {
  return refusal('malformed', `not a valid CRL: ${why}`);
}

/** Takes a CRL apart (DER or PEM); a refusal with reason `malformed` on anything not a CRL. */
export function parseCrl(data: Buffer): CrlFacts {
  const der = crlDer(data);
  try {
    const outer = readDer(der);
    if (outer.tag !== DER.SEQUENCE || outer.raw.length !== der.length) throw new DerError('not one SEQUENCE');
    const [tbs, algorithm, signatureBits] = children(outer);
    if (tbs?.tag !== DER.SEQUENCE || algorithm?.tag !== DER.SEQUENCE || signatureBits?.tag !== DER.BIT_STRING)
      throw new DerError('CertificateList is not tbsCertList, signatureAlgorithm, signatureValue');
    const fields = children(tbs);
    let i = fields[0]?.tag === DER.INTEGER ? 1 : 0; // version, present in v2 CRLs
    const innerAlgorithm = fields[i++];
    // §5.1.1.2: the signature field of the TBS must equal signatureAlgorithm.
    if (!innerAlgorithm?.raw.equals(algorithm.raw)) throw new DerError('inner and outer algorithms differ');
    const issuer = fields[i++];
    if (issuer?.tag !== DER.SEQUENCE) throw new DerError('issuer is not a Name');
    const thisUpdate = fields[i++];
    if (!isTime(thisUpdate)) throw new DerError('thisUpdate missing');
    const next = fields[i];
    const nextUpdate = isTime(next) ? timeOf(next) : undefined;
    if (nextUpdate) i++;
    const revoked = fields[i]?.tag === DER.SEQUENCE ? children(fields[i]!).length : 0;
    const algorithmOid = children(algorithm)[0];
    if (!algorithmOid) throw new DerError('signatureAlgorithm without OID');
    if (signatureBits.content[0] !== 0) throw new DerError('signature BIT STRING has unused bits');
    return {
      der,
      issuerName: issuer.raw,
      thisUpdate: timeOf(thisUpdate),
      ...(nextUpdate ? { nextUpdate } : {}),
      revokedCount: revoked,
      tbs: tbs.raw,
      signatureAlgorithm: oidOf(algorithmOid),
      signature: signatureBits.content.subarray(1),
    };
  } catch (err) {
    // Whatever the bytes make the reader trip on (a length past the end, a bad time), it is not a CRL.
    throw malformed(err instanceof Error ? err.message : String(err));
  }
}

/** A certificate's subject in the canonical form DNs are compared by (pki/dn.ts). */
export function canonicalSubject(cert: X509Certificate): string {
  return normalizeDn(cert.subject.split('\n').join(','));
}

/** DER of a certificate's subject Name (RFC 5280 §4.1: the sixth field of TBSCertificate). */
export function subjectNameDer(cert: X509Certificate): Buffer {
  const tbs = children(readDer(cert.raw))[0];
  if (!tbs) throw new DerError('certificate without TBSCertificate');
  const fields = children(tbs);
  const offset = fields[0]?.tag === DER.CONTEXT_0 ? 1 : 0; // explicit [0] version
  const subject: DerNode | undefined = fields[offset + 4];
  if (!subject) throw new DerError('certificate without subject');
  return subject.raw;
}

/**
 * The authority that issued and signed this CRL, among `authorities` (tls.caFiles), checked against
 * the authority the mirror is for (`expected`, a DN: a list issued by another authority, even one we
 * trust, would replace that authority's revocations with someone else's). Refusals: `wrong_issuer`
 * when the CRL's issuer is not the expected authority or not one we trust at all, `bad_signature`
 * when the signature does not verify with that authority's key (or uses an algorithm we do not
 * accept).
 */
export function crlIssuer(
  crl: CrlFacts,
  authorities: readonly X509Certificate[],
  expected?: string,
): X509Certificate {
  const named = authorities.filter((a) => subjectNameDer(a).equals(crl.issuerName));
  if (named.length === 0)
    throw refusal('wrong_issuer', 'the CRL issuer is not one of the configured authorities (tls.caFiles)');
  if (expected !== undefined) {
    const want = normalizeDn(expected);
    const got = canonicalSubject(named[0]!);
    if (got !== want)
      throw refusal(
        'wrong_issuer',
        `the CRL is issued by ${got}, not by ${want}, the authority this mirror is for`,
        {
          issuer: got,
          expectedIssuer: want,
        },
      );
  }
  const digest = SIGNATURE_DIGESTS[crl.signatureAlgorithm];
  if (!digest)
    throw refusal('bad_signature', `CRL signature algorithm ${crl.signatureAlgorithm} is not accepted`);
  // Several certificates may carry one name (a renewed authority key): any of them may have signed.
  const signer = named.find((a) => {
    try {
      return verify(digest, crl.tbs, a.publicKey, crl.signature);
    } catch {
      return false;
    }
  });
  if (!signer)
    throw refusal('bad_signature', `the CRL signature does not verify with the key of ${named[0]!.subject}`, {
      issuer: named[0]!.subject.replace(/\n/g, ', '),
    });
  return signer;
}

/**
 * The authorities of tls.caFiles that no revocation list covers: none of the CRLs in service is
 * issued by them and no mirror names them as its `issuer`. Production refuses to start with any
 * (MSSANTE.md "Certificates": revocation must be checked), since a peer certificate from such an
 * authority could never be checked.
 */
export function authoritiesWithoutRevocation(
  authorities: readonly X509Certificate[],
  crlPems: Iterable<string>,
  mirrorIssuers: readonly string[],
): X509Certificate[] {
  const issuers = [...crlPems].map((pem) => parseCrl(Buffer.from(pem, 'latin1')).issuerName);
  const mirrored = new Set(mirrorIssuers.map(normalizeDn));
  return authorities.filter(
    (a) => !mirrored.has(canonicalSubject(a)) && !issuers.some((name) => subjectNameDer(a).equals(name)),
  );
}

/** PEM form of a CRL's DER (what Node's TLS contexts take). */
export function crlPem(der: Buffer): string {
  const b64 = der.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN X509 CRL-----\n${b64.replace(/\n$/, '')}\n-----END X509 CRL-----\n`;
}
