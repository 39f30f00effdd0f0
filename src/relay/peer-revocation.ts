import type { X509Certificate } from 'node:crypto';
import { GatewayError } from '../errors/index.js';
import type { TrustMaterial } from '../pki/index.js';

/**
 * Whether a remote's certificate chain, judged by OpenSSL when its connection was opened, has been
 * revoked since by the CRLs now in service (a mirror refresh or a reload swapped the trust
 * material). Used before a pooled relay connection is reused: OpenSSL checks revocation only at the
 * handshake, and a connection may live for minutes (relay.maxConnectionAgeSeconds).
 *
 * Only the serial numbers are read, matched by issuer name (RFC 5280 §5.1.2.6, §5.3.3 indirect CRLs
 * are not used by IGC-Santé). The signature of a CRL is not checked here: the answer only decides
 * whether a connection is given another message. "Revoked", or a list that cannot be read, closes
 * the connection, and the new one is judged by OpenSSL against the same lists, signatures included;
 * so a wrong "revoked" costs one handshake, never a delivery to a revoked peer.
 */
export type PeerRevocation = 'valid' | 'revoked' | 'unknown';

/** Revoked serials (hex, no leading zeros) by issuer (its Name's DER, hex). */
type RevocationIndex = ReadonlyMap<string, ReadonlySet<string>> | 'unreadable';

const indexes = new WeakMap<TrustMaterial, RevocationIndex>();

/** The chain's revocation status under `material`: revoked when any certificate of it is listed. */
export function peerRevocation(material: TrustMaterial, leaf: X509Certificate): PeerRevocation {
  const index = indexOf(material);
  if (index === 'unreadable') return 'unknown';
  let cert: X509Certificate | undefined = leaf;
  // issuerCertificate is set on certificates taken from a TLS socket; a root is its own issuer.
  for (let depth = 0; cert && depth < 8; depth += 1) {
    let id: { issuer: string; serial: string };
    try {
      id = certificateId(cert.raw);
    } catch {
      return 'unknown';
    }
    if (index.get(id.issuer)?.has(id.serial)) return 'revoked';
    const next: X509Certificate | undefined = cert.issuerCertificate;
    if (!next || next.fingerprint256 === cert.fingerprint256) break;
    cert = next;
  }
  return 'valid';
}

/** Built once per trust material (a reload makes a new object), on the first reuse check after it. */
function indexOf(material: TrustMaterial): RevocationIndex {
  let index = indexes.get(material);
  if (!index) {
    index = buildIndex(material.crl);
    indexes.set(material, index);
  }
  return index;
}

const PEM_CRL = /-----BEGIN X509 CRL-----([\s\S]+?)-----END X509 CRL-----/g;

function buildIndex(pems: readonly string[]): RevocationIndex {
  const index = new Map<string, Set<string>>();
  try {
    for (const pem of pems) {
      for (const m of pem.matchAll(PEM_CRL)) {
        const { issuer, serials } = revokedSerials(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'));
        let set = index.get(issuer);
        if (!set) index.set(issuer, (set = new Set()));
        for (const s of serials) set.add(s);
      }
    }
  } catch {
    return 'unreadable';
  }
  return index;
}

// A DER walk (X.690 §8.1) over the few fields read here; loadTrustMaterial had OpenSSL parse every
// CRL before it entered service, so a failure here is unexpected and answers "unknown".
const SEQUENCE = 0x30;
const INTEGER = 0x02;
const CONTEXT_0 = 0xa0;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

const derInvalid = (why: string): GatewayError => new GatewayError('DER_INVALID', why);

interface Tlv {
  readonly tag: number;
  /** Offsets of the whole TLV and of its value. */
  readonly start: number;
  readonly valueStart: number;
  readonly end: number;
}

function tlv(buf: Buffer, at: number, within = buf.length): Tlv {
  if (at + 2 > within) throw derInvalid('truncated DER');
  const tag = buf[at]!;
  let length = buf[at + 1]!;
  let valueStart = at + 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    if (n === 0 || n > 4 || valueStart + n > within) throw derInvalid('unsupported DER length');
    length = 0;
    for (let i = 0; i < n; i += 1) length = length * 256 + buf[valueStart + i]!;
    valueStart += n;
  }
  const end = valueStart + length;
  if (end > within) throw derInvalid('truncated DER');
  return { tag, start: at, valueStart, end };
}

function expect(node: Tlv, tag: number): Tlv {
  if (node.tag !== tag) throw derInvalid(`DER tag ${node.tag} where ${tag} was expected`);
  return node;
}

/** An INTEGER's value as hex without leading zeros (the form two serials are compared in). */
function serialHex(buf: Buffer, node: Tlv): string {
  return buf
    .toString('hex', node.valueStart, node.end)
    .replace(/^(00)+(?=.)/, '')
    .toUpperCase();
}

/** TBSCertList (RFC 5280 §5.1): the issuer and every revokedCertificates entry's serial. */
function revokedSerials(der: Buffer): { issuer: string; serials: string[] } {
  const list = expect(tlv(der, 0), SEQUENCE);
  const tbs = expect(tlv(der, list.valueStart, list.end), SEQUENCE);
  let field = tlv(der, tbs.valueStart, tbs.end);
  if (field.tag === INTEGER) field = tlv(der, field.end, tbs.end); // version
  const signature = expect(field, SEQUENCE);
  const issuer = expect(tlv(der, signature.end, tbs.end), SEQUENCE);
  const thisUpdate = tlv(der, issuer.end, tbs.end);
  if (thisUpdate.tag !== UTC_TIME && thisUpdate.tag !== GENERALIZED_TIME) throw derInvalid('no thisUpdate');
  let at = thisUpdate.end;
  const serials: string[] = [];
  // Then an optional nextUpdate, the optional revokedCertificates, the optional crlExtensions.
  while (at < tbs.end) {
    const next = tlv(der, at, tbs.end);
    at = next.end;
    if (next.tag === UTC_TIME || next.tag === GENERALIZED_TIME) continue;
    if (next.tag === CONTEXT_0) break; // crlExtensions
    expect(next, SEQUENCE);
    for (let e = next.valueStart; e < next.end;) {
      const entry = expect(tlv(der, e, next.end), SEQUENCE);
      serials.push(serialHex(der, expect(tlv(der, entry.valueStart, entry.end), INTEGER)));
      e = entry.end;
    }
  }
  return { issuer: der.toString('hex', issuer.start, issuer.end), serials };
}

/** TBSCertificate (RFC 5280 §4.1): the serial and the issuer Name's DER. */
function certificateId(der: Buffer): { issuer: string; serial: string } {
  const cert = expect(tlv(der, 0), SEQUENCE);
  const tbs = expect(tlv(der, cert.valueStart, cert.end), SEQUENCE);
  let field = tlv(der, tbs.valueStart, tbs.end);
  if (field.tag === CONTEXT_0) field = tlv(der, field.end, tbs.end); // explicit version
  const serial = expect(field, INTEGER);
  const signature = expect(tlv(der, serial.end, tbs.end), SEQUENCE);
  const issuer = expect(tlv(der, signature.end, tbs.end), SEQUENCE);
  return { issuer: der.toString('hex', issuer.start, issuer.end), serial: serialHex(der, serial) };
}
