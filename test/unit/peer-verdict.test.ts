import { describe, expect, it } from 'vitest';
import { judgePeer, parseDn, normalizeDn } from '../../src/pki/index.js';

const PEER = 'CN=mx.peer.mssante.test,OU=1,O=Pair,C=FR';
const whitelist = {
  domainsOf: (dn: string) => (dn === normalizeDn(PEER) ? new Set(['peer.mssante.test']) : new Set<string>()),
};
const subject = parseDn(PEER);

describe('peer verdict', () => {
  it.each([
    [{ secure: false, authorized: false }, 'TLS_REQUIRED'],
    [{ secure: true, authorized: false }, 'CERT_MISSING'],
    [{ secure: true, subject, authorized: false, authorizationError: 'CERT_HAS_EXPIRED' }, 'CERT_EXPIRED'],
    [{ secure: true, subject, authorized: false, authorizationError: 'CERT_NOT_YET_VALID' }, 'CERT_EXPIRED'],
    [{ secure: true, subject, authorized: false, authorizationError: 'CERT_REVOKED' }, 'CERT_REVOKED'],
    [
      { secure: true, subject, authorized: false, authorizationError: 'UNABLE_TO_GET_CRL' },
      'CRL_UNAVAILABLE',
    ],
    [{ secure: true, subject, authorized: false, authorizationError: 'CRL_HAS_EXPIRED' }, 'CRL_UNAVAILABLE'],
    [
      { secure: true, subject, authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' },
      'CERT_UNTRUSTED',
    ],
    [
      { secure: true, subject, authorized: false, authorizationError: 'SELF_SIGNED_CERT_IN_CHAIN' },
      'CERT_UNTRUSTED',
    ],
    [{ secure: true, subject, authorized: false, authorizationError: 'INVALID_PURPOSE' }, 'CERT_UNTRUSTED'],
    [{ secure: true, subject: parseDn('CN=other,C=FR'), authorized: true }, 'OPERATOR_NOT_WHITELISTED'],
    // A foreign chain that brings its own root: OpenSSL's last error is about the CRL.
    [
      {
        secure: true,
        subject,
        authorized: false,
        authorizationError: 'UNABLE_TO_GET_CRL',
        issuedByTrustedAuthority: false,
      },
      'CERT_UNTRUSTED',
    ],
    [
      {
        secure: true,
        subject,
        authorized: false,
        authorizationError: 'CERT_HAS_EXPIRED',
        issuedByTrustedAuthority: false,
      },
      'CERT_UNTRUSTED',
    ],
    [
      {
        secure: true,
        subject,
        authorized: false,
        authorizationError: 'UNABLE_TO_GET_CRL',
        issuedByTrustedAuthority: true,
      },
      'CRL_UNAVAILABLE',
    ],
  ] as const)('%j → %s', (facts, code) => {
    const v = judgePeer(facts, whitelist);
    expect(v.ok).toBe(false);
    expect(!v.ok && v.code).toBe(code);
  });

  it('accepts a whitelisted, verified operator with its domains', () => {
    const v = judgePeer({ secure: true, subject, authorized: true }, whitelist);
    expect(v).toEqual({ ok: true, dn: normalizeDn(PEER), domains: new Set(['peer.mssante.test']) });
  });
});
