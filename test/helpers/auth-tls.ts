import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { connect, createServer, type TLSSocket } from 'node:tls';
import type { TlsFacts } from '../../src/auth/index.js';
import forge from 'node-forge';
import {
  generateRsaKey,
  issueCertificate,
  type DistinguishedName,
  type ExtendedKeyUsage,
  type RsaKey,
} from '../../src/pki/cert-builder.js';
import { AUTHORITY_PROFILES } from '../../src/pki/dev-pki-profile.js';
import { devPkiSettings, loadTrustMaterial, tlsProfile, type TrustMaterial } from '../../src/pki/index.js';

/**
 * What the TLS layer of a client-facing listener knows about a client after a real handshake: a TLS
 * server configured like the gateway's (dev trust material, CRLs, our profile, certificate requested
 * but judged by us), and a client presenting one development leaf (or none).
 */

export function devTrust(pkiDir: string): TrustMaterial {
  return loadTrustMaterial(devPkiSettings(pkiDir).tls).material;
}

export async function handshakeFacts(pkiDir: string, leaf?: string): Promise<TlsFacts> {
  const trust = devTrust(pkiDir);
  const profile = tlsProfile({ minVersion: 'TLSv1.2', allowCbc: false });
  let resolveFacts: (facts: TlsFacts) => void = () => undefined;
  const facts = new Promise<TlsFacts>((resolve) => (resolveFacts = resolve));
  const server = createServer(
    {
      key: trust.key,
      cert: trust.cert,
      ca: [...trust.ca],
      crl: [...trust.crl],
      ...profile,
      requestCert: true,
      rejectUnauthorized: false,
    },
    (socket: TLSSocket) => {
      const peer = socket.getPeerX509Certificate();
      resolveFacts({
        secure: true,
        authorized: socket.authorized,
        ...(peer ? { peerCertificate: peer } : {}),
        ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
      });
      socket.end();
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const file = (name: string) => readFileSync(path.join(pkiDir, name), 'utf8');
  const client = connect({
    host: '127.0.0.1',
    port,
    ...profile,
    ca: [...trust.ca],
    servername: 'localhost',
    ...(leaf ? { cert: file(`${leaf}.chain.pem`), key: file(`${leaf}.key`) } : {}),
  });
  client.on('error', () => undefined); // the server ends the connection once it has the facts
  try {
    return await facts;
  } finally {
    client.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** The RsaKey shape cert-builder signs with, from a PEM key file of the development PKI. */
export function rsaKeyFromPem(pem: string): RsaKey {
  const privateKey = forge.pki.privateKeyFromPem(pem);
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  const keyIdentifier = forge.pki
    .getPublicKeyFingerprint(publicKey, { type: 'RSAPublicKey', md: forge.md.sha1.create() })
    .getBytes();
  return { pem, privateKey, publicKey, keyIdentifier };
}

/**
 * A leaf signed by one of the development authorities, for the rules OpenSSL does not apply
 * (purpose, national id): shapes the development PKI does not contain.
 */
export async function issueTestLeaf(
  pkiDir: string,
  authority: 'org' | 'pp',
  subject: DistinguishedName,
  extKeyUsage: readonly ExtendedKeyUsage[],
): Promise<X509Certificate> {
  const issuerKey = rsaKeyFromPem(readFileSync(path.join(pkiDir, `ca/${authority}.key`), 'utf8'));
  const now = Date.now();
  const leaf = issueCertificate({
    subject,
    key: await generateRsaKey(),
    notBefore: new Date(now - 3_600_000),
    notAfter: new Date(now + 86_400_000),
    issuer: { subject: AUTHORITY_PROFILES[authority].subject, key: issuerKey },
    extKeyUsage,
  });
  return new X509Certificate(leaf.pem);
}
