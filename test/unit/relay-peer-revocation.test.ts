import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { crlPem } from '../../src/directory/index.js';
import {
  type DevPkiManifest,
  type TrustMaterial,
  devPkiSettings,
  loadTrustMaterial,
  readDevPkiManifest,
} from '../../src/pki/index.js';
import { peerListsCurrentUntil, peerRevocation } from '../../src/relay/index.js';
import { devCrl } from '../helpers/national-data.js';

/**
 * The relay's check of a pooled connection's peer against the CRLs in service now (issue #12):
 * the serials of the development CRLs, read by issuer, over the development PKI's own leaves.
 */

let pkiDir: string;
let material: TrustMaterial;
let manifest: DevPkiManifest;
const leaf = (name: string) => new X509Certificate(readFileSync(path.join(pkiDir, `${name}.crt`)));

beforeAll(async () => {
  pkiDir = inject('pkiDir');
  material = loadTrustMaterial(devPkiSettings(pkiDir).tls).material;
  manifest = (await readDevPkiManifest(pkiDir))!;
});

/** The material in service with the org authority's list replaced by `der`. */
function withOrgCrl(der: Buffer): TrustMaterial {
  const org = [...material.crlByFile.keys()].find((f) => f.endsWith('org.crl'))!;
  const crlByFile = new Map(material.crlByFile);
  crlByFile.set(org, crlPem(der));
  return { ...material, crlByFile, crl: [...crlByFile.values()] };
}

describe('peer revocation under the CRLs in service', () => {
  it('finds the development PKI revoked leaf revoked and the trusted one valid', () => {
    expect(peerRevocation(material, leaf('peer-revoked'))).toBe('revoked');
    expect(peerRevocation(material, leaf('peer-trusted'))).toBe('valid');
    expect(peerRevocation(material, leaf('gateway'))).toBe('valid');
  });

  it('follows a new list: a serial revoked since is revoked under it, still valid under the old one', async () => {
    const serial = manifest.leaves['peer-trusted'].serial;
    const newer = withOrgCrl(await devCrl(pkiDir, 'org', { revokedSerials: [serial], crlNumber: 7 }));
    expect(peerRevocation(newer, leaf('peer-trusted'))).toBe('revoked');
    expect(peerRevocation(material, leaf('peer-trusted'))).toBe('valid');
    // The same serial in a list of another authority revokes nothing of org's.
    const foreign = {
      ...material,
      crl: [...material.crl, crlPem(await devCrl(pkiDir, 'pp', { revokedSerials: [serial] }))],
    };
    expect(peerRevocation(foreign, leaf('peer-trusted'))).toBe('valid');
  });

  it('says until when the lists answering for a chain are current: the earliest nextUpdate of its issuers', async () => {
    const soon = new Date(Date.now() + 3_600_000);
    const later = withOrgCrl(await devCrl(pkiDir, 'org', { nextUpdate: soon, crlNumber: 8 }));
    // The org list answers for the peer's leaf: its nextUpdate, earlier than the root's, bounds it.
    expect(peerListsCurrentUntil(later, leaf('peer-trusted'))).toBe(Math.floor(soon.getTime() / 1000) * 1000);
    expect(peerListsCurrentUntil(material, leaf('peer-trusted'))).toBeGreaterThan(soon.getTime());
  });

  it('answers unknown when a list in service cannot be read (the caller then judges afresh)', () => {
    const garbled = {
      ...material,
      crl: [...material.crl, '-----BEGIN X509 CRL-----\nMAMCAQA=\n-----END X509 CRL-----\n'],
    };
    expect(peerRevocation(garbled, leaf('peer-trusted'))).toBe('unknown');
  });
});
