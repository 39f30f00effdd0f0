import { describe, expect, it } from 'vitest';
import { attributesFromSubject, normalizeDn } from '../../src/pki/index.js';
import type { DnAttribute } from '../../src/pki/index.js';
import { type RemoteTlsFacts, type RemoteWhitelistView, judgeRemote } from '../../src/relay/index.js';

const PEER: DnAttribute[] = [
  { type: 'CN', value: 'mx.peer.mssante.test' },
  { type: 'OU', value: '499000000000002' },
  { type: 'O', value: 'Operateur Pair Dev' },
  { type: 'C', value: 'FR' },
];
const OTHER: DnAttribute[] = [
  { type: 'CN', value: 'mx.other.mssante.test' },
  { type: 'OU', value: '499000000000009' },
  { type: 'O', value: 'Autre Operateur' },
  { type: 'C', value: 'FR' },
];
const PEER_DN = normalizeDn('C=FR, O=Operateur Pair Dev, OU=499000000000002, CN=mx.peer.mssante.test');
const OTHER_DN = normalizeDn('CN=mx.other.mssante.test,OU=499000000000009,O=Autre Operateur,C=FR');

/** peer.mssante.test is served by PEER's MTA; other.mssante.test by OTHER's. */
const whitelist: RemoteWhitelistView = {
  dnsOf: (domain) =>
    new Set(
      ({ 'peer.mssante.test': [PEER_DN], 'other.mssante.test': [OTHER_DN] } as Record<string, string[]>)[
        domain
      ] ?? [],
    ),
};

const trusted: RemoteTlsFacts = { secure: true, subject: PEER, authorized: true };
const failed = (authorizationError: string, issuedByTrustedAuthority = true): RemoteTlsFacts => ({
  secure: true,
  subject: PEER,
  authorized: false,
  authorizationError,
  issuedByTrustedAuthority,
});

describe('judgeRemote', () => {
  it('accepts a valid certificate whose DN is registered for the recipient domain', () => {
    expect(judgeRemote(trusted, whitelist, 'peer.mssante.test')).toEqual({
      ok: true,
      dn: PEER_DN,
      domain: 'peer.mssante.test',
    });
  });

  it.each<[string, RemoteTlsFacts, string, string, boolean]>([
    ['domain absent from the whitelist', trusted, 'nowhere.test', 'domain_not_whitelisted', false],
    [
      'domain absent, even without TLS',
      { secure: false, authorized: false },
      'nowhere.test',
      'domain_not_whitelisted',
      false,
    ],
    ['no STARTTLS', { secure: false, authorized: false }, 'peer.mssante.test', 'starttls_unavailable', true],
    ['no certificate', { secure: true, authorized: false }, 'peer.mssante.test', 'cert_untrusted', false],
    [
      'empty subject',
      { secure: true, subject: [], authorized: true },
      'peer.mssante.test',
      'cert_untrusted',
      false,
    ],
    ['expired', failed('CERT_HAS_EXPIRED'), 'peer.mssante.test', 'cert_expired', false],
    ['not yet valid', failed('CERT_NOT_YET_VALID'), 'peer.mssante.test', 'cert_expired', false],
    ['revoked', failed('CERT_REVOKED'), 'peer.mssante.test', 'cert_revoked', false],
    ['our CRL missing', failed('UNABLE_TO_GET_CRL'), 'peer.mssante.test', 'crl_unavailable', true],
    ['our CRL expired', failed('CRL_HAS_EXPIRED'), 'peer.mssante.test', 'crl_unavailable', true],
    // OpenSSL's last error on a foreign chain can be UNABLE_TO_GET_CRL: not our CRL's fault.
    [
      'foreign chain ending on CRL error',
      failed('UNABLE_TO_GET_CRL', false),
      'peer.mssante.test',
      'cert_untrusted',
      false,
    ],
    [
      'foreign chain, expired too',
      failed('CERT_HAS_EXPIRED', false),
      'peer.mssante.test',
      'cert_untrusted',
      false,
    ],
    [
      'unknown issuer',
      failed('UNABLE_TO_GET_ISSUER_CERT_LOCALLY', false),
      'peer.mssante.test',
      'cert_untrusted',
      false,
    ],
    [
      'self-signed',
      failed('DEPTH_ZERO_SELF_SIGNED_CERT', false),
      'peer.mssante.test',
      'cert_untrusted',
      false,
    ],
    ['unknown OpenSSL error', failed('SOMETHING_NEW'), 'peer.mssante.test', 'cert_untrusted', false],
    [
      'no error code',
      { secure: true, subject: PEER, authorized: false },
      'peer.mssante.test',
      'cert_untrusted',
      false,
    ],
    // A whitelisted operator, but not the one registered for this domain.
    [
      'DN of another domain',
      { ...trusted, subject: OTHER },
      'peer.mssante.test',
      'dn_not_whitelisted_for_domain',
      false,
    ],
    [
      'DN whitelisted nowhere',
      { ...trusted, subject: [{ type: 'CN', value: 'x' }] },
      'peer.mssante.test',
      'dn_not_whitelisted_for_domain',
      false,
    ],
  ])('refuses: %s', (_name, facts, domain, reason, temporary) => {
    const verdict = judgeRemote(facts, whitelist, domain);
    expect(verdict).toMatchObject({ ok: false, reason, temporary });
  });

  it('names the remote DN in certificate refusals', () => {
    expect(judgeRemote(failed('CERT_REVOKED'), whitelist, 'peer.mssante.test')).toMatchObject({
      dn: PEER_DN,
    });
    expect(judgeRemote({ ...trusted, subject: OTHER }, whitelist, 'peer.mssante.test')).toMatchObject({
      dn: OTHER_DN,
    });
  });

  it('compares DNs after normalising attribute order and spacing', () => {
    // As Node reports the subject of a peer certificate, in another order and with extra spaces.
    const subject = attributesFromSubject({
      C: 'FR',
      CN: 'mx.peer.mssante.test',
      O: 'Operateur   Pair Dev',
      OU: ' 499000000000002',
    });
    expect(judgeRemote({ ...trusted, subject }, whitelist, 'peer.mssante.test').ok).toBe(true);
  });

  it('compares DN values exactly (case matters)', () => {
    const shouted = PEER.map((a) => (a.type === 'O' ? { ...a, value: a.value.toUpperCase() } : a));
    expect(judgeRemote({ ...trusted, subject: shouted }, whitelist, 'peer.mssante.test')).toMatchObject({
      ok: false,
      reason: 'dn_not_whitelisted_for_domain',
    });
  });
});
