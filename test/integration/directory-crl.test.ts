import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'node:tls';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { crlFile, crlPem } from '../../src/directory/index.js';
import { loadTrustMaterial, readDevPkiManifest, type TrustMaterial } from '../../src/pki/index.js';
import { metricValue, scratchDir, startMirrors, useNationalServer } from '../helpers/directory-harness.js';
import { devCrl } from '../helpers/national-data.js';

const HOUR = 3_600_000;

const { server, track } = useNationalServer();

async function crlMirror(source: string, issuer?: string) {
  return track(
    startMirrors({
      directory: { crls: [{ name: 'org', source, ...(issuer === undefined ? {} : { issuer }) }] },
    }),
  );
}

/** The subject DN of a development authority, as an operator writes it in `directory.crls[].issuer`. */
function authorityDn(name: 'org' | 'root'): string {
  const cert = new X509Certificate(readFileSync(path.join(inject('pkiDir'), 'ca', `${name}.crt`)));
  return cert.subject.split('\n').reverse().join(',');
}

/** The TLS verdict on the national server's certificate (peer-trusted) with this trust material. */
function verdict(trust: TrustMaterial, port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: [...trust.ca],
      crl: [...trust.crl],
      rejectUnauthorized: false,
    });
    socket.once('secureConnect', () => {
      resolve(socket.authorized ? 'authorized' : String(socket.authorizationError));
      socket.destroy();
    });
    socket.once('error', (err: Error) => resolve(`error ${err.message}`));
  });
}

describe('CRL mirrors', () => {
  it('accepts a CRL signed by its authority, writes it for TLS and reports its next update', async () => {
    const pkiDir = inject('pkiDir');
    const manifest = await readDevPkiManifest(pkiDir);
    const revoked = manifest?.leaves['peer-trusted'].serial ?? '';
    expect(revoked).toMatch(/^[0-9A-F]+$/);
    server().serve('/org.crl', await devCrl(pkiDir, 'org', { revokedSerials: [revoked], crlNumber: 5 }));
    const h = await crlMirror(server().url('/org.crl'));
    expect(h.mirrors.mirrors).toEqual(['whitelist', 'crl:org']);

    expect(await h.mirrors.refresh('crl:org')).toMatchObject({
      outcome: 'accepted',
      reason: 'ok',
      entries: 1,
    });
    const file = crlFile(h.config.dataDir, 'org');
    expect(h.crlChanges).toEqual([{ name: 'org', file }]);
    expect(h.mirrors.crlFiles()).toEqual([file]);
    expect(readFileSync(file, 'utf8')).toMatch(/^-----BEGIN X509 CRL-----\n/);
    const next = await metricValue(h.metrics, 'mssgw_crl_next_update_seconds', { crl: 'org' });
    expect(next).toBeGreaterThan(7 * 24 * 3600 - 600);
    expect(next).toBeLessThanOrEqual(7 * 24 * 3600);
    expect(h.events('directory.mirror.accepted')[0]).toMatchObject({
      mirror: 'crl:org',
      issuer: expect.stringContaining('ORGANISATIONS') as unknown,
    });

    // The mirrored list reaches TLS: with it in place of the shipped one, the certificate is revoked.
    const before = loadTrustMaterial(h.config.tls).material;
    const withMirror = loadTrustMaterial({
      ...h.config.tls,
      crlFiles: h.config.tls.crlFiles.map((f) => (f.endsWith('org.crl') ? file : f)),
    }).material;
    const port = Number(new URL(server().url('/')).port);
    expect(await verdict(before, port)).toBe('authorized');
    expect(await verdict(withMirror, port)).toBe('CERT_REVOKED');
  });

  it('refuses a forged, foreign, older or garbled CRL and keeps the one in service', async () => {
    const pkiDir = inject('pkiDir');
    const now = Date.now();
    server().serve('/refuse.crl', await devCrl(pkiDir, 'org', { thisUpdate: new Date(now - HOUR) }));
    const h = await crlMirror(server().url('/refuse.crl'));
    expect((await h.mirrors.refresh('crl:org')).outcome).toBe('accepted');
    const file = crlFile(h.config.dataDir, 'org');
    const inService = readFileSync(file, 'utf8');

    const attempts: Array<[string, Buffer, string]> = [
      ['signed with another key', await devCrl(pkiDir, 'org', { forged: true }), 'bad_signature'],
      ['from an authority we do not trust', await devCrl(pkiDir, 'foreign-root'), 'wrong_issuer'],
      // Valid and signed by an authority we trust, but not the one this mirror is for: taking it
      // would replace the organisations CA's revocations with the root's (1 entry → 0).
      [
        'from the root, for the organisations CA',
        await devCrl(pkiDir, 'root', { crlNumber: 9 }),
        'wrong_issuer',
      ],
      [
        'whose nextUpdate has passed',
        await devCrl(pkiDir, 'org', {
          thisUpdate: new Date(now - HOUR / 2),
          nextUpdate: new Date(now - 60_000),
        }),
        'expired',
      ],
      [
        'older than the one in service',
        await devCrl(pkiDir, 'org', { thisUpdate: new Date(now - 2 * HOUR) }),
        'older',
      ],
      ['not a CRL', Buffer.from('<html>maintenance</html>'), 'malformed'],
    ];
    for (const [what, body, reason] of attempts) {
      server().serve('/refuse.crl', body);
      const r = await h.mirrors.refresh('crl:org');
      expect({ what, outcome: r.outcome, reason: r.reason }).toEqual({ what, outcome: 'refused', reason });
    }
    expect(readFileSync(file, 'utf8')).toBe(inService);
    expect(h.crlChanges).toHaveLength(1);
    expect(
      await metricValue(h.metrics, 'mssgw_mirror_refresh_total', {
        mirror: 'crl:org',
        outcome: 'refused',
        reason: 'bad_signature',
      }),
    ).toBe(1);
    const status = (await h.mirrors.status()).find((s) => s.mirror === 'crl:org');
    expect(status).toMatchObject({ version: 1, lastOutcome: 'refused', lastReason: 'malformed' });
  });

  it('with its authority configured, refuses from the first copy a CRL of another authority', async () => {
    const pkiDir = inject('pkiDir');
    const revoked = (await readDevPkiManifest(pkiDir))?.leaves['peer-trusted'].serial ?? '';
    const file = path.join(scratchDir('crl'), 'org.pem');
    writeFileSync(file, crlPem(await devCrl(pkiDir, 'root')));
    const h = await crlMirror(file, authorityDn('org'));
    const refused = await h.mirrors.refresh('crl:org');
    expect(refused).toMatchObject({ outcome: 'refused', reason: 'wrong_issuer' });
    expect(refused.error).toMatch(/ORGANISATIONS/);
    expect(h.events('directory.mirror.refused')[0]).toMatchObject({
      mirror: 'crl:org',
      reason: 'wrong_issuer',
    });
    expect(
      await metricValue(h.metrics, 'mssgw_mirror_refresh_total', {
        mirror: 'crl:org',
        outcome: 'refused',
        reason: 'wrong_issuer',
      }),
    ).toBe(1);
    const status = (await h.mirrors.status()).find((s) => s.mirror === 'crl:org');
    expect(status).toMatchObject({ lastOutcome: 'refused', lastReason: 'wrong_issuer' });
    expect(status?.version).toBeUndefined();

    // Its own authority's list, in PEM, is taken.
    writeFileSync(file, crlPem(await devCrl(pkiDir, 'org', { revokedSerials: [revoked] })));
    expect(await h.mirrors.refresh('crl:org')).toMatchObject({
      outcome: 'accepted',
      reason: 'ok',
      entries: 1,
    });
    expect(authorityDn('root')).toMatch(/RACINE/);
  });
});
