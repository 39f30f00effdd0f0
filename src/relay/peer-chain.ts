import type { X509Certificate } from 'node:crypto';
import { issuedByOneOf } from '../pki/index.js';

/**
 * What a pooled relay connection's handshake proved about the remote's chain, checked again before
 * each reuse (RelayTransport): OpenSSL judges the chain only at the handshake, and a connection may
 * live for minutes (relay.maxConnectionAgeSeconds).
 */

/**
 * The remote's certificate and its issuers as the TLS socket gave them (`issuerCertificate`: what
 * the remote sent, completed from our store), leaf first. A root is its own issuer.
 */
export function peerChain(leaf: X509Certificate): X509Certificate[] {
  const chain: X509Certificate[] = [];
  let cert: X509Certificate | undefined = leaf;
  for (let depth = 0; cert && depth < 8; depth += 1) {
    chain.push(cert);
    const next: X509Certificate | undefined = cert.issuerCertificate;
    if (!next || next.fingerprint256 === cert.fingerprint256) break;
    cert = next;
  }
  return chain;
}

/** When the first certificate of the chain ends its validity (an intermediate may end before the leaf). */
export function chainNotAfter(chain: readonly X509Certificate[]): number {
  return Math.min(...chain.map((c) => Date.parse(c.validTo)));
}

/**
 * Whether the chain still ends at one of the authorities in service: OpenSSL (no partial chains)
 * accepts a chain only up to a self-signed authority of our store, so an authority removed from
 * tls.caFiles since the handshake leaves the connection without a trust anchor.
 */
export function anchoredIn(
  chain: readonly X509Certificate[],
  authorities: readonly X509Certificate[],
): boolean {
  const roots = authorities.filter((a) => a.checkIssued(a));
  const fingerprints = new Set(roots.map((r) => r.fingerprint256));
  if (chain.some((c) => fingerprints.has(c.fingerprint256))) return true;
  const top = chain.at(-1);
  return top !== undefined && issuedByOneOf(top, roots);
}

/**
 * Whether the remote's chain is ours to trust, for classifying a handshake OpenSSL did not authorize:
 * the leaf signed by one of our authorities, and its chain ending at one of our roots. When not,
 * the refusal is `cert_untrusted` whatever OpenSSL's last error says: with rejectUnauthorized off it
 * goes on after a missing anchor and ends on the revocation lists, and for a chain whose root we no
 * longer configure (its intermediate still in tls.caFiles) that last error is "no CRL issuer", which
 * would read as our list missing, a temporary failure, when what must change is the trust
 * configuration or the peer's certificate.
 */
export function trustedChain(leaf: X509Certificate, authorities: readonly X509Certificate[]): boolean {
  return issuedByOneOf(leaf, authorities) && anchoredIn(peerChain(leaf), authorities);
}
