import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { certificatePrincipal, type TlsFacts } from '../../src/auth/index.js';
import { DEV_PERSON_NATIONAL_ID, normalizeDn, readDevPkiManifest } from '../../src/pki/index.js';
import { devTrust, handshakeFacts, issueTestLeaf } from '../helpers/auth-tls.js';

const pkiDir = inject('pkiDir');
const authorities = () => devTrust(pkiDir).authorities;

function judge(facts: TlsFacts, now = new Date()) {
  if (!facts.peerCertificate) throw new Error('no client certificate in the handshake');
  return certificatePrincipal(
    {
      certificate: facts.peerCertificate,
      authorized: facts.authorized,
      ...(facts.authorizationError ? { authorizationError: facts.authorizationError } : {}),
    },
    authorities(),
    now,
  );
}

describe('certificate principals after a real mutual-TLS handshake', () => {
  it('person-dupont (CPS-like, issued by the PERSONNES authority) is a person by national id', async () => {
    const manifest = await readDevPkiManifest(pkiDir);
    const verdict = judge(await handshakeFacts(pkiDir, 'person-dupont'));
    expect(verdict).toEqual({
      ok: true,
      principal: {
        kind: 'person',
        nationalId: DEV_PERSON_NATIONAL_ID,
        via: 'certificate',
        dn: normalizeDn(manifest!.leaves['person-dupont'].subject),
      },
    });
  });

  it('app-lab (issued by the ORGANISATIONS authority) is an application by DN and fingerprint', async () => {
    const manifest = await readDevPkiManifest(pkiDir);
    const verdict = judge(await handshakeFacts(pkiDir, 'app-lab'));
    expect(verdict).toEqual({
      ok: true,
      principal: {
        kind: 'application',
        dn: normalizeDn(manifest!.leaves['app-lab'].subject),
        fingerprint: manifest!.leaves['app-lab'].fingerprint256,
      },
    });
  });

  it.each([
    ['peer-revoked', 'CERT_REVOKED', 'cert_revoked'],
    ['peer-expired', 'CERT_EXPIRED', 'cert_expired'],
    ['peer-foreign', 'CERT_UNTRUSTED', 'cert_untrusted'],
  ])('%s is refused with %s', async (leaf, code, reason) => {
    const facts = await handshakeFacts(pkiDir, leaf);
    expect(facts.authorized).toBe(false);
    expect(judge(facts)).toMatchObject({ ok: false, code, reason, dn: expect.any(String) as unknown });
  });

  it('a handshake without a client certificate has none to judge', async () => {
    const facts = await handshakeFacts(pkiDir);
    expect(facts.peerCertificate).toBeUndefined();
  });
});

describe('certificate principals: rules OpenSSL does not apply', () => {
  const pem = (name: string) => new X509Certificate(readFileSync(path.join(pkiDir, name)));

  it('refuses a verified certificate once the clock has passed its end (long or resumed sessions)', () => {
    const cert = pem('person-dupont.crt');
    const after = new Date(new Date(cert.validTo).getTime() + 1000);
    expect(certificatePrincipal({ certificate: cert, authorized: true }, authorities(), after)).toMatchObject(
      {
        ok: false,
        code: 'CERT_EXPIRED',
      },
    );
  });

  it('refuses a certificate without the clientAuth purpose (RFC 5280 §4.2.1.12)', async () => {
    const subject = [
      { type: 'C', value: 'FR' },
      { type: 'O', value: 'Serveur Dev' },
      { type: 'CN', value: 'server-only.mssante.test' },
    ] as const;
    const cert = await issueTestLeaf(pkiDir, 'org', subject, ['serverAuth']);
    expect(
      certificatePrincipal({ certificate: cert, authorized: true }, authorities(), new Date()),
    ).toMatchObject({
      ok: false,
      code: 'CERT_UNTRUSTED',
      reason: 'cert_purpose',
    });
  });

  it('reads the national id from the CN when there is no serialNumber, and refuses a person without one', async () => {
    const person = (cn: string) =>
      [
        { type: 'C', value: 'FR' },
        { type: 'O', value: 'CABINET DEV' },
        { type: 'CN', value: cn },
      ] as const;
    const byCn = await issueTestLeaf(pkiDir, 'pp', person('0751234567'), ['clientAuth']);
    expect(
      certificatePrincipal({ certificate: byCn, authorized: true }, authorities(), new Date()),
    ).toMatchObject({
      ok: true,
      principal: { kind: 'person', nationalId: '0751234567', via: 'certificate' },
    });
    const noId = await issueTestLeaf(pkiDir, 'pp', person('Jeanne DUPONT'), ['clientAuth']);
    expect(
      certificatePrincipal({ certificate: noId, authorized: true }, authorities(), new Date()),
    ).toMatchObject({
      ok: false,
      code: 'AUTH_CREDENTIALS_INVALID',
      reason: 'cert_no_national_id',
    });
  });

  it('tells an unverified certificate of ours from a foreign one whatever OpenSSL reports last', () => {
    const app = pem('app-lab.crt');
    const foreign = pem('peer-foreign.crt');
    const crlMissing = { authorized: false, authorizationError: 'UNABLE_TO_GET_CRL' };
    expect(
      certificatePrincipal({ certificate: app, ...crlMissing }, authorities(), new Date()),
    ).toMatchObject({
      code: 'CRL_UNAVAILABLE',
    });
    expect(
      certificatePrincipal({ certificate: foreign, ...crlMissing }, authorities(), new Date()),
    ).toMatchObject({
      code: 'CERT_UNTRUSTED',
    });
  });
});
