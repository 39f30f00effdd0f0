import type { X509Certificate } from 'node:crypto';
import { DER, DerError, children, parseCrl, readDer, type DerNode } from '../directory/index.js';
import type { TrustMaterial } from '../pki/index.js';
import { peerChain } from './peer-chain.js';

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

/** An issuer's lists in service: the serials they revoke, and until when the latest is current. */
interface IssuerLists {
  /** Revoked serials (hex, no leading zeros). */
  readonly serials: Set<string>;
  /** The latest nextUpdate among them (ms; Infinity when none gives one). */
  nextUpdate: number;
}

/** Lists by issuer (its Name's DER, hex). */
type RevocationIndex = ReadonlyMap<string, IssuerLists> | 'unreadable';

const indexes = new WeakMap<TrustMaterial, RevocationIndex>();

/** The chain's revocation status under `material`: revoked when any certificate of it is listed. */
export function peerRevocation(material: TrustMaterial, leaf: X509Certificate): PeerRevocation {
  const index = indexOf(material);
  if (index === 'unreadable') return 'unknown';
  for (const cert of peerChain(leaf)) {
    let id: { issuer: string; serial: string };
    try {
      id = certificateId(cert.raw);
    } catch {
      return 'unknown';
    }
    if (index.get(id.issuer)?.serials.has(id.serial)) return 'revoked';
  }
  return 'valid';
}

/**
 * Until when (ms) the lists in service that answer for the chain are current: the earliest
 * nextUpdate of its issuers' lists. Past it OpenSSL refuses a new handshake (CRL_HAS_EXPIRED), so
 * a pooled connection judged under them gets nothing more either. Infinity when no list says (or
 * none can be read: peerRevocation answers unknown then).
 */
export function peerListsCurrentUntil(material: TrustMaterial, leaf: X509Certificate): number {
  const index = indexOf(material);
  if (index === 'unreadable') return Number.POSITIVE_INFINITY;
  let until = Number.POSITIVE_INFINITY;
  for (const cert of peerChain(leaf)) {
    try {
      const lists = index.get(certificateId(cert.raw).issuer);
      if (lists) until = Math.min(until, lists.nextUpdate);
    } catch {
      // A certificate that cannot be read: peerRevocation answers unknown for it.
    }
  }
  return until;
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
  const index = new Map<string, IssuerLists>();
  try {
    for (const pem of pems) {
      for (const m of pem.matchAll(PEM_CRL)) {
        const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
        const { issuer, serials } = revokedSerials(der);
        const nextUpdate = parseCrl(der).nextUpdate?.getTime() ?? Number.POSITIVE_INFINITY;
        let lists = index.get(issuer);
        if (!lists) index.set(issuer, (lists = { serials: new Set(), nextUpdate }));
        // OpenSSL takes the most recent list of an issuer: the latest nextUpdate is the one that counts.
        else lists.nextUpdate = Math.max(lists.nextUpdate, nextUpdate);
        for (const s of serials) lists.serials.add(s);
      }
    }
  } catch {
    return 'unreadable';
  }
  return index;
}

// A DER walk (X.690 §8.1) over the few fields read here, with the directory's DER reader;
// loadTrustMaterial had OpenSSL parse every CRL before it entered service, so a failure here is
// unexpected and answers "unknown".
function expectTag(node: DerNode | undefined, tag: number): DerNode {
  if (node?.tag !== tag) throw new DerError(`DER tag ${node?.tag ?? 'none'} where ${tag} was expected`);
  return node;
}

const isTime = (node: DerNode): boolean => node.tag === DER.UTC_TIME || node.tag === DER.GENERALIZED_TIME;

/** An INTEGER's value as hex without leading zeros (the form two serials are compared in). */
function serialHex(node: DerNode): string {
  return node.content
    .toString('hex')
    .replace(/^(00)+(?=.)/, '')
    .toUpperCase();
}

/** TBSCertList (RFC 5280 §5.1): the issuer and every revokedCertificates entry's serial. */
function revokedSerials(der: Buffer): { issuer: string; serials: string[] } {
  const tbs = children(expectTag(children(expectTag(readDer(der), DER.SEQUENCE))[0], DER.SEQUENCE));
  let at = tbs[0]?.tag === DER.INTEGER ? 1 : 0; // version
  expectTag(tbs[at++], DER.SEQUENCE); // signature
  const issuer = expectTag(tbs[at++], DER.SEQUENCE);
  const thisUpdate = tbs[at++];
  if (!thisUpdate || !isTime(thisUpdate)) throw new DerError('no thisUpdate');
  const serials: string[] = [];
  // Then an optional nextUpdate, the optional revokedCertificates, the optional crlExtensions.
  for (const next of tbs.slice(at)) {
    if (isTime(next)) continue;
    if (next.tag === DER.CONTEXT_0) break; // crlExtensions
    for (const entry of children(expectTag(next, DER.SEQUENCE)))
      serials.push(serialHex(expectTag(children(expectTag(entry, DER.SEQUENCE))[0], DER.INTEGER)));
  }
  return { issuer: issuer.raw.toString('hex'), serials };
}

/** TBSCertificate (RFC 5280 §4.1): the serial and the issuer Name's DER. */
function certificateId(der: Buffer): { issuer: string; serial: string } {
  const tbs = children(expectTag(children(expectTag(readDer(der), DER.SEQUENCE))[0], DER.SEQUENCE));
  const at = tbs[0]?.tag === DER.CONTEXT_0 ? 1 : 0; // explicit version
  const serial = expectTag(tbs[at], DER.INTEGER);
  expectTag(tbs[at + 1], DER.SEQUENCE); // signature
  const issuer = expectTag(tbs[at + 2], DER.SEQUENCE);
  return { issuer: issuer.raw.toString('hex'), serial: serialHex(serial) };
}
