import { SignJWT } from 'jose';
import { afterEach, describe, expect, it } from 'vitest';
import {
  AuthFailure,
  JwtTokenVerifier,
  type JwtTokenVerifierOptions,
  type TokenIssuer,
} from '../../src/auth/index.js';
import type { Clock } from '../../src/shared/index.js';
import { startTestIssuer, type IssuerAlg, type TestIssuer } from '../helpers/auth-issuer.js';

// A real HTTP issuer (node:http on port 0) publishing a JWKS, as a Keycloak realm does; the verifier
// fetches it with jose's remote key set.

const issuers: TestIssuer[] = [];
afterEach(async () => {
  await Promise.all(issuers.splice(0).map((i) => i.close()));
});

async function issuer(alg: IssuerAlg = 'RS256'): Promise<TestIssuer> {
  const i = await startTestIssuer(alg);
  issuers.push(i);
  return i;
}

function issuerConfig(i: TestIssuer, extra: Partial<TokenIssuer> = {}): TokenIssuer {
  return {
    name: 'psc-test',
    issuer: i.issuer,
    jwksUrl: i.jwksUrl,
    nationalIdClaim: 'SubjectNameID',
    development: false,
    ...extra,
  };
}

const fixedClock = (seconds: number): Clock => ({ now: () => new Date(seconds * 1000) });

function verifier(config: TokenIssuer | TokenIssuer[], extra: Partial<JwtTokenVerifierOptions> = {}) {
  return new JwtTokenVerifier({
    issuers: Array.isArray(config) ? config : [config],
    clockSkewSeconds: 30,
    jwksCacheSeconds: 600,
    // The test issuer serves http, which production refuses.
    mode: 'development',
    clock: { now: () => new Date() },
    ...extra,
  });
}

/** Verifies, expecting a refusal; checks that nothing of the token leaks into the error. */
async function refusal(v: JwtTokenVerifier, token: string): Promise<{ code: string; reason: string }> {
  try {
    await v.verify(token);
  } catch (err) {
    expect(err).toBeInstanceOf(AuthFailure);
    const failure = err as AuthFailure;
    const parts = token.split('.').filter((p) => p.length >= 8);
    for (const text of [failure.message, JSON.stringify(failure.details), String(failure.stack)]) {
      for (const part of parts) expect(text).not.toContain(part);
    }
    return { code: failure.code, reason: failure.reason };
  }
  throw new Error('expected the token to be refused');
}

describe('token verifier against a real JWKS endpoint', () => {
  it.each(['RS256', 'PS256', 'ES256'] as const)(
    'accepts a valid %s token and reads the national id',
    async (alg) => {
      const i = await issuer(alg);
      const v = verifier(issuerConfig(i));
      const verified = await v.verify(await i.token({ nationalId: '810001234567' }));
      expect(verified).toMatchObject({ issuer: 'psc-test', nationalId: '810001234567' });
      expect(verified.expiresAt.getTime()).toBeGreaterThan(Date.now());
    },
  );

  it('accepts an ADELI national id (0 + 9 characters, 2A/2B for Corsica)', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    expect((await v.verify(await i.token({ nationalId: '02a1234567' }))).nationalId).toBe('02A1234567');
  });

  it('tells an expired token (beyond the skew) from one within the skew', async () => {
    const i = await issuer();
    const now = 1_900_000_000;
    const v = verifier(issuerConfig(i), { clock: fixedClock(now) });
    await expect(v.verify(await i.token({ now, expiresIn: -29 }))).resolves.toMatchObject({
      issuer: 'psc-test',
    });
    expect(await refusal(v, await i.token({ now, expiresIn: -31 }))).toEqual({
      code: 'AUTH_TOKEN_EXPIRED',
      reason: 'token_expired',
    });
  });

  it.each([
    ['not yet valid (nbf beyond the skew)', { notBefore: 60 }, 'claim_nbf'],
    ['issued in the future (iat beyond the skew)', { issuedAt: 60 }, 'claim_iat'],
    ['without an expiry', { expiresIn: null }, 'claim_exp'],
    ['without the national id claim', { nationalId: null }, 'national_id_missing'],
    ['with a malformed national id', { nationalId: '81000000000' }, 'national_id_malformed'],
    ['with a numeric national id', { nationalId: 810000000001 }, 'national_id_malformed'],
    [
      'with the national id in another claim',
      { nationalIdClaim: 'preferred_username' },
      'national_id_missing',
    ],
  ])('refuses a token %s', async (_label, spec, reason) => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    expect(await refusal(v, await i.token(spec))).toEqual({ code: 'AUTH_TOKEN_INVALID', reason });
  });

  it('reads the national id from the configured claim', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i, { nationalIdClaim: 'preferred_username' }));
    const token = await i.token({ nationalIdClaim: 'preferred_username', nationalId: '899700000001' });
    expect((await v.verify(token)).nationalId).toBe('899700000001');
  });

  it('checks aud and azp when configured', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i, { audience: ['mssgw'], authorizedParty: ['lps-client'] }));
    await expect(v.verify(await i.token({ audience: ['account', 'mssgw'] }))).resolves.toBeDefined();
    expect(await refusal(v, await i.token({ audience: 'other-service' }))).toEqual({
      code: 'AUTH_TOKEN_INVALID',
      reason: 'claim_aud',
    });
    expect(await refusal(v, await i.token({}))).toMatchObject({ reason: 'claim_aud' });
    expect(await refusal(v, await i.token({ audience: 'mssgw', azp: 'other-client' }))).toMatchObject({
      reason: 'claim_azp',
    });
  });

  it('refuses a token from an issuer not configured, without fetching anything', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    const foreign = await i.token({ issuer: 'https://auth.esante.gouv.fr/auth/realms/other' });
    expect(await refusal(v, foreign)).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'unknown_issuer' });
    expect(i.jwksRequests()).toBe(0);
  });

  it('picks the issuer by iss and checks the signature with that issuer keys only', async () => {
    const a = await issuer();
    const b = await issuer();
    const v = verifier([issuerConfig(a), issuerConfig(b, { name: 'psc-sandbox' })]);
    expect((await v.verify(await b.token())).issuer).toBe('psc-sandbox');
    // Signed by A's key but claiming to come from B.
    const forged = await a.token({ issuer: b.issuer, kid: b.current().kid });
    expect(await refusal(v, forged)).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'bad_signature' });
  });

  it('refuses a bad signature: another key with the published kid', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    const impostor = await i.newKey('RS256', i.current().kid);
    expect(await refusal(v, await i.token({ key: impostor }))).toEqual({
      code: 'AUTH_TOKEN_INVALID',
      reason: 'bad_signature',
    });
  });

  it('refuses algorithms other than RS256, PS256, ES256 (HS256 with the public key, none)', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    const hs = await new SignJWT({ SubjectNameID: '810000000001' })
      .setProtectedHeader({ alg: 'HS256', kid: i.current().kid })
      .setIssuer(i.issuer)
      .setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(i.current().publicJwk)));
    expect(await refusal(v, hs)).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'alg_not_allowed' });
    const [, payload] = (await i.token()).split('.');
    const none = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${payload}.`;
    expect(await refusal(v, none)).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'alg_not_allowed' });
    expect(await refusal(v, 'not-a-jwt')).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'malformed' });
    expect(await refusal(v, 'a'.repeat(20_000))).toEqual({ code: 'AUTH_TOKEN_INVALID', reason: 'oversize' });
  });
});

describe('token verifier: key rotation, cooldown and issuer outages', () => {
  it('fetches the JWKS again when a token names an unknown kid, and accepts it after rotation', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i), { cooldownSeconds: 0 });
    await v.verify(await i.token());
    await v.verify(await i.token());
    expect(i.jwksRequests()).toBe(1); // cached
    await i.rotate();
    await expect(v.verify(await i.token())).resolves.toMatchObject({ issuer: 'psc-test' });
    expect(i.jwksRequests()).toBe(2);
  });

  it('asks the issuer at most once per cooldown, however many unknown kids attackers send', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i), { cooldownSeconds: 30 });
    await v.verify(await i.token());
    for (let n = 0; n < 5; n++) {
      const stranger = await i.newKey();
      expect(await refusal(v, await i.token({ key: stranger }))).toEqual({
        code: 'AUTH_TOKEN_INVALID',
        reason: 'unknown_kid',
      });
    }
    expect(i.jwksRequests()).toBe(1);
  });

  it('answers AUTH_ISSUER_UNAVAILABLE (temporary) when the issuer is down, then waits before asking again', async () => {
    const i = await issuer();
    const token = await i.token();
    i.failWith(503);
    const fetches: string[] = [];
    const v = verifier(issuerConfig(i), {
      retryDelaySeconds: 60,
      onJwksFetch: (name, outcome) => fetches.push(`${name}:${outcome}`),
    });
    const first = await refusal(v, token);
    expect(first).toEqual({ code: 'AUTH_ISSUER_UNAVAILABLE', reason: 'issuer_unavailable' });
    await refusal(v, token);
    expect(i.jwksRequests()).toBe(1);
    expect(fetches).toEqual(['psc-test:failed']);
  });

  it('answers AUTH_ISSUER_UNAVAILABLE when nothing listens any more', async () => {
    const i = await issuer();
    const token = await i.token();
    await i.close();
    const v = verifier(issuerConfig(i));
    expect(await refusal(v, token)).toEqual({
      code: 'AUTH_ISSUER_UNAVAILABLE',
      reason: 'issuer_unavailable',
    });
  });

  it('keeps verifying from its cache while the issuer is down', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    await v.verify(await i.token());
    i.failWith(500);
    await expect(v.verify(await i.token())).resolves.toMatchObject({ issuer: 'psc-test' });
  });

  it('wants the JWKS over https in production', async () => {
    const i = await issuer();
    expect(() => verifier(issuerConfig(i), { mode: 'production' })).toThrow(/https in production/);
    expect(() =>
      verifier(issuerConfig(i, { jwksUrl: 'https://auth.esante.gouv.fr/realms/x/certs' }), {
        mode: 'production',
      }),
    ).not.toThrow();
  });

  it('gives the OpenID discovery URL of an issuer (RFC 7628 §3.2.2)', async () => {
    const i = await issuer();
    const v = verifier(issuerConfig(i));
    expect(v.openidConfigurationUrl('psc-test')).toBe(`${i.issuer}/.well-known/openid-configuration`);
    expect(v.openidConfigurationUrl('nope')).toBeUndefined();
  });
});
