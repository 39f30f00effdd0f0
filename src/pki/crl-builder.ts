import forge from 'node-forge';
import type { DistinguishedName, RsaKey } from './cert-builder.js';
import { dnToAsn1 } from './cert-builder.js';

/**
 * X.509 v2 CRL builder (RFC 5280 §5). node-forge parses and signs but has no CRL type, so the
 * TBSCertList is assembled with forge.asn1 and signed with the CA's forge key. Development only.
 */

const { Class, Type } = forge.asn1;

const OID_SHA256_WITH_RSA = '1.2.840.113549.1.1.11';
const OID_AUTHORITY_KEY_IDENTIFIER = '2.5.29.35';
const OID_CRL_NUMBER = '2.5.29.20';
const OID_REASON_CODE = '2.5.29.21';

/** RFC 5280 §5.3.1 CRLReason values the development PKI uses. */
export const CRL_REASON = {
  unspecified: 0,
  keyCompromise: 1,
  superseded: 4,
  cessationOfOperation: 5,
} as const;
export type CrlReason = keyof typeof CRL_REASON;

export interface RevokedEntry {
  /** Certificate serial, hex. */
  readonly serial: string;
  readonly revocationDate: Date;
  readonly reason: CrlReason;
}

export interface CrlSpec {
  readonly issuer: { readonly subject: DistinguishedName; readonly key: RsaKey };
  readonly thisUpdate: Date;
  readonly nextUpdate: Date;
  /** cRLNumber (§5.2.3): monotonically increasing per issuer. */
  readonly crlNumber: number;
  readonly revoked: readonly RevokedEntry[];
}

export interface BuiltCrl {
  readonly der: Buffer;
  readonly pem: string;
}

function seq(value: forge.asn1.Asn1[]): forge.asn1.Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.SEQUENCE, true, value);
}

function oid(id: string): forge.asn1.Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.OID, false, forge.asn1.oidToDer(id).getBytes());
}

function integerFromHex(hex: string): forge.asn1.Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.util.hexToBytes(hex));
}

function integer(n: number): forge.asn1.Asn1 {
  return forge.asn1.create(Class.UNIVERSAL, Type.INTEGER, false, forge.asn1.integerToDer(n).getBytes());
}

/** RFC 5280 §5.1.2.4: UTCTime through 2049, GeneralizedTime from 2050. */
function time(date: Date): forge.asn1.Asn1 {
  return date.getUTCFullYear() < 2050
    ? forge.asn1.create(Class.UNIVERSAL, Type.UTCTIME, false, forge.asn1.dateToUtcTime(date))
    : forge.asn1.create(Class.UNIVERSAL, Type.GENERALIZEDTIME, false, forge.asn1.dateToGeneralizedTime(date));
}

/** Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE (omitted), extnValue OCTET STRING }. */
function extension(id: string, value: forge.asn1.Asn1): forge.asn1.Asn1 {
  return seq([
    oid(id),
    forge.asn1.create(Class.UNIVERSAL, Type.OCTETSTRING, false, forge.asn1.toDer(value).getBytes()),
  ]);
}

function sha256WithRsa(): forge.asn1.Asn1 {
  return seq([oid(OID_SHA256_WITH_RSA), forge.asn1.create(Class.UNIVERSAL, Type.NULL, false, '')]);
}

function revokedCertificate(entry: RevokedEntry): forge.asn1.Asn1 {
  const reason = forge.asn1.create(
    Class.UNIVERSAL,
    Type.ENUMERATED,
    false,
    String.fromCharCode(CRL_REASON[entry.reason]),
  );
  return seq([
    integerFromHex(entry.serial),
    time(entry.revocationDate),
    // §5.3.1: the reason code is a non-critical entry extension.
    seq([extension(OID_REASON_CODE, reason)]),
  ]);
}

function tbsCertList(spec: CrlSpec): forge.asn1.Asn1 {
  const authorityKeyIdentifier = seq([
    forge.asn1.create(Class.CONTEXT_SPECIFIC, 0, false, spec.issuer.key.keyIdentifier),
  ]);
  const fields: forge.asn1.Asn1[] = [
    integer(1), // v2: required because the CRL carries extensions (§5.1.2.1)
    sha256WithRsa(),
    dnToAsn1(spec.issuer.subject),
    time(spec.thisUpdate),
    time(spec.nextUpdate),
  ];
  // §5.1.2.6: an empty list is omitted, not encoded as an empty SEQUENCE.
  if (spec.revoked.length > 0) fields.push(seq(spec.revoked.map(revokedCertificate)));
  fields.push(
    forge.asn1.create(Class.CONTEXT_SPECIFIC, 0, true, [
      seq([
        // §5.2.1 and §5.2.3: conforming CRL issuers include both.
        extension(OID_AUTHORITY_KEY_IDENTIFIER, authorityKeyIdentifier),
        extension(OID_CRL_NUMBER, integer(spec.crlNumber)),
      ]),
    ]),
  );
  return seq(fields);
}

/** Builds a CRL signed sha256WithRSAEncryption by `spec.issuer.key`, in DER and PEM (`X509 CRL`). */
export function buildCrl(spec: CrlSpec): BuiltCrl {
  const tbs = tbsCertList(spec);
  const md = forge.md.sha256.create();
  md.update(forge.asn1.toDer(tbs).getBytes());
  const signature = spec.issuer.key.privateKey.sign(md);
  const certificateList = seq([
    tbs,
    sha256WithRsa(),
    // BIT STRING: a leading 0x00 says no unused bits.
    forge.asn1.create(Class.UNIVERSAL, Type.BITSTRING, false, `\u0000${signature}`),
  ]);
  const derBytes = forge.asn1.toDer(certificateList).getBytes();
  return {
    der: Buffer.from(derBytes, 'binary'),
    pem: forge.pem.encode({ type: 'X509 CRL', body: derBytes }).replace(/\r\n/g, '\n'),
  };
}
