import { generateKeyPair, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

/**
 * X.509 building blocks of the development PKI: RSA keys, distinguished names and certificates shaped
 * like IGC-Santé's (RSA 2048, SHA-256, SKI/AKI on every certificate). Development only: nothing here
 * is used to handle production keys.
 */

const generateKeyPairAsync = promisify(generateKeyPair);

/** Attribute types the development certificates use, with their OIDs (X.520). */
const DN_ATTRIBUTE_OIDS = {
  C: '2.5.4.6',
  ST: '2.5.4.8',
  O: '2.5.4.10',
  OU: '2.5.4.11',
  CN: '2.5.4.3',
  SN: '2.5.4.4',
  GN: '2.5.4.42',
  serialNumber: '2.5.4.5',
} as const;

export type RdnAttributeType = keyof typeof DN_ATTRIBUTE_OIDS;

export interface RdnAttribute {
  readonly type: RdnAttributeType;
  readonly value: string;
}

/**
 * A distinguished name as its RDN sequence is encoded in the certificate (DER order: country first,
 * common name near the end), one attribute per RDN.
 */
export type DistinguishedName = readonly RdnAttribute[];

/** RFC 4514 §2.4: characters escaped anywhere in a value (`=` too, which §2.4 allows, for safety). */
const DN_SPECIAL = /[,+"\\<>;=]/g;

function escapeDnValue(value: string): string {
  let escaped = value.replace(DN_SPECIAL, (c) => `\\${c}`);
  // RFC 4514 §2.4: a leading '#' or space and a trailing space are escaped too.
  if (escaped.startsWith(' ') || escaped.startsWith('#')) escaped = `\\${escaped}`;
  if (escaped.endsWith(' ') && !escaped.endsWith('\\ ')) escaped = `${escaped.slice(0, -1)}\\ `;
  return escaped;
}

/**
 * The DN as a string in the national whitelist style, which is RFC 4514's: the last RDN of the
 * encoded sequence first (`CN=...,OU=...,O=...,ST=...,C=FR`), as `openssl x509 -nameopt RFC2253`
 * prints it.
 */
export function formatDn(dn: DistinguishedName): string {
  return [...dn]
    .reverse()
    .map((a) => `${a.type}=${escapeDnValue(a.value)}`)
    .join(',');
}

function toForgeAttributes(dn: DistinguishedName): forge.pki.CertificateField[] {
  return dn.map((a) => ({
    type: DN_ATTRIBUTE_OIDS[a.type],
    value: a.value,
    // RFC 5280 §4.1.2.4 / X.520: countryName and serialNumber are PrintableString; everything else is
    // UTF8String (French names carry accents). The forge typings call this field a Class; it is a Type.
    valueTagClass: (a.type === 'C' || a.type === 'serialNumber'
      ? forge.asn1.Type.PRINTABLESTRING
      : forge.asn1.Type.UTF8) as unknown as forge.asn1.Class,
  }));
}

/** The DER encoding of a DN, identical to what a certificate built from it carries. */
export function dnToAsn1(dn: DistinguishedName): forge.asn1.Asn1 {
  return forge.pki.distinguishedNameToAsn1({ attributes: toForgeAttributes(dn) });
}

export interface RsaKey {
  /** PKCS#8 PEM, as written to disk. */
  readonly pem: string;
  readonly privateKey: forge.pki.rsa.PrivateKey;
  readonly publicKey: forge.pki.rsa.PublicKey;
  /** RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, as a forge byte string. */
  readonly keyIdentifier: string;
}

/**
 * RSA 2048 key pair. Node's OpenSSL keygen runs in the thread pool and is two orders of magnitude
 * faster than forge's pure-JS one; forge only needs the key to sign.
 */
export async function generateRsaKey(): Promise<RsaKey> {
  const { privateKey: pem } = await generateKeyPairAsync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  const privateKey = forge.pki.privateKeyFromPem(pem);
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  const keyIdentifier = forge.pki
    .getPublicKeyFingerprint(publicKey, { type: 'RSAPublicKey', md: forge.md.sha1.create() })
    .getBytes();
  return { pem, privateKey, publicKey, keyIdentifier };
}

/**
 * 16 random bytes, read as a positive DER INTEGER: the top bit is cleared (negative otherwise) and
 * the first byte is never zero (a leading 0x00 before a byte below 0x80 is not minimal DER).
 * Upper-case hex, as Node and OpenSSL print serials.
 */
export function randomSerialHex(): string {
  const bytes = randomBytes(16);
  bytes[0] = ((bytes[0] ?? 1) & 0x7f) | 0x01;
  return bytes.toString('hex').toUpperCase();
}

export type ExtendedKeyUsage = 'serverAuth' | 'clientAuth' | 'emailProtection';

/** What a certificate says about itself; the issuer signs it with `issuer.key`. */
export interface CertificateSpec {
  readonly subject: DistinguishedName;
  readonly key: RsaKey;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** Omitted for a self-signed root. */
  readonly issuer?: { readonly subject: DistinguishedName; readonly key: RsaKey };
  /** CA certificates: `pathLength` 0 for intermediates that sign only leaves; undefined for a root. */
  readonly ca?: { readonly pathLength?: number };
  readonly extKeyUsage?: readonly ExtendedKeyUsage[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
}

export interface IssuedCertificate {
  readonly subject: DistinguishedName;
  readonly key: RsaKey;
  readonly serial: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly pem: string;
  readonly der: Buffer;
}

function extensionsFor(spec: CertificateSpec, issuerKey: RsaKey): object[] {
  const exts: object[] = [];
  if (spec.ca) {
    // RFC 5280 §4.2.1.9 and §4.2.1.3: both critical on a CA; a CA signs certificates and CRLs only.
    exts.push({
      name: 'basicConstraints',
      critical: true,
      cA: true,
      ...(spec.ca.pathLength === undefined ? {} : { pathLenConstraint: spec.ca.pathLength }),
    });
    exts.push({ name: 'keyUsage', critical: true, keyCertSign: true, cRLSign: true });
  } else {
    exts.push({ name: 'basicConstraints', critical: true, cA: false });
    // ECDHE-RSA signs the handshake (digitalSignature); keyEncipherment is kept for S/MIME and the
    // TLS 1.2 profiles of older peers, as IGC-Santé server certificates carry it.
    exts.push({ name: 'keyUsage', critical: true, digitalSignature: true, keyEncipherment: true });
  }
  if (spec.extKeyUsage && spec.extKeyUsage.length > 0) {
    exts.push({
      name: 'extKeyUsage',
      ...Object.fromEntries(spec.extKeyUsage.map((usage) => [usage, true])),
    });
  }
  const altNames = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(spec.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  if (altNames.length > 0) exts.push({ name: 'subjectAltName', altNames });
  exts.push({ name: 'subjectKeyIdentifier' });
  // forge's `keyIdentifier: true` would hash the subject's own key; the AKI must name the issuer's.
  exts.push({ name: 'authorityKeyIdentifier', keyIdentifier: issuerKey.keyIdentifier });
  return exts;
}

/** Builds and signs (sha256WithRSAEncryption) one X.509 v3 certificate. */
export function issueCertificate(spec: CertificateSpec): IssuedCertificate {
  const issuer = spec.issuer ?? { subject: spec.subject, key: spec.key };
  const serial = randomSerialHex();
  const cert = forge.pki.createCertificate();
  cert.publicKey = spec.key.publicKey;
  cert.serialNumber = serial;
  cert.validity.notBefore = spec.notBefore;
  cert.validity.notAfter = spec.notAfter;
  cert.setSubject(toForgeAttributes(spec.subject));
  cert.setIssuer(toForgeAttributes(issuer.subject));
  cert.setExtensions(extensionsFor(spec, issuer.key));
  cert.sign(issuer.key.privateKey, forge.md.sha256.create());
  const der = Buffer.from(forge.asn1.toDer(forge.pki.certificateToAsn1(cert)).getBytes(), 'binary');
  return {
    subject: spec.subject,
    key: spec.key,
    serial,
    notBefore: spec.notBefore,
    notAfter: spec.notAfter,
    pem: forge.pki.certificateToPem(cert).replace(/\r\n/g, '\n'),
    der,
  };
}
