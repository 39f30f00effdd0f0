import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { SignJWT, importJWK, type CryptoKey, type JWK } from 'jose';
import { generateJwkPair } from '../../src/shared/index.js';

/**
 * A real HTTP server playing a Pro Santé Connect realm: it publishes a JWKS at the realm's
 * `protocol/openid-connect/certs`, signs tokens, rotates keys and can fail (HTTP status) or go down.
 */

export type IssuerAlg = 'RS256' | 'PS256' | 'ES256';

export interface IssuerKey {
  readonly kid: string;
  readonly alg: IssuerAlg;
  readonly privateKey: CryptoKey;
  readonly publicJwk: JWK;
}

export interface TokenSpec {
  /** National id claim value; `null` leaves the claim out. Default 810000000001. */
  readonly nationalId?: string | number | null;
  /** Claim name of the national id. Default SubjectNameID. */
  readonly nationalIdClaim?: string;
  /** Seconds from `now` to exp; `null` leaves exp out. Default 300. */
  readonly expiresIn?: number | null;
  /** Seconds from `now` (may be negative). */
  readonly notBefore?: number;
  /** Seconds from `now` for iat. Default 0. */
  readonly issuedAt?: number;
  readonly audience?: string | string[];
  readonly azp?: string;
  readonly issuer?: string;
  /** Sign with this key (default: the current published one). */
  readonly key?: IssuerKey;
  /** kid header (default: the signing key's). */
  readonly kid?: string;
  /** Reference time, seconds since the epoch. Default: now. */
  readonly now?: number;
}

export interface TestIssuer {
  /** The realm URL, the tokens' `iss`. */
  readonly issuer: string;
  readonly jwksUrl: string;
  /** JWKS requests served (including refused ones). */
  readonly jwksRequests: () => number;
  readonly current: () => IssuerKey;
  /** Publishes a new key instead of the current one (Keycloak rotation, old key dropped). */
  rotate(alg?: IssuerAlg): Promise<IssuerKey>;
  /** A key that is never published. */
  newKey(alg?: IssuerAlg, kid?: string): Promise<IssuerKey>;
  /** Answer JWKS requests with this HTTP status (undefined: 200 with the key set). */
  failWith(status: number | undefined): void;
  token(spec?: TokenSpec): Promise<string>;
  close(): Promise<void>;
}

export async function makeKey(alg: IssuerAlg = 'RS256', kid: string = randomUUID()): Promise<IssuerKey> {
  // Exported by the generation itself, then imported: see generateJwkPair (a Node 20 deadlock).
  const { privateJwk, publicJwk } = await generateJwkPair(alg);
  const privateKey = (await importJWK(privateJwk, alg)) as CryptoKey;
  return { kid, alg, privateKey, publicJwk: { ...publicJwk, kid, alg, use: 'sig' } };
}

export async function startTestIssuer(alg: IssuerAlg = 'RS256'): Promise<TestIssuer> {
  let key = await makeKey(alg);
  let status: number | undefined;
  let requests = 0;
  const server: Server = createServer((req, res) => {
    requests += 1;
    if (req.url !== '/realms/esante-wallet/protocol/openid-connect/certs') {
      res.writeHead(404).end();
    } else if (status !== undefined) {
      res.writeHead(status, { 'content-type': 'text/plain' }).end('unavailable');
    } else {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end(JSON.stringify({ keys: [key.publicJwk] }));
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const issuer = `http://127.0.0.1:${port}/realms/esante-wallet`;
  return {
    issuer,
    jwksUrl: `${issuer}/protocol/openid-connect/certs`,
    jwksRequests: () => requests,
    current: () => key,
    rotate: async (nextAlg = alg) => (key = await makeKey(nextAlg)),
    newKey: (nextAlg = alg, kid) => makeKey(nextAlg, kid),
    failWith: (s) => (status = s),
    token: (spec = {}) => signToken(spec.key ?? key, issuer, spec),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export function signToken(key: IssuerKey, issuer: string, spec: TokenSpec = {}): Promise<string> {
  const now = spec.now ?? Math.floor(Date.now() / 1000);
  const claims: Record<string, unknown> = { scope: 'openid', azp: spec.azp ?? 'lps-client' };
  const nationalId = spec.nationalId === undefined ? '810000000001' : spec.nationalId;
  if (nationalId !== null) claims[spec.nationalIdClaim ?? 'SubjectNameID'] = nationalId;
  const jwt = new SignJWT(claims)
    .setProtectedHeader({ alg: key.alg, kid: spec.kid ?? key.kid, typ: 'JWT' })
    .setIssuer(spec.issuer ?? issuer)
    .setSubject(randomUUID())
    .setIssuedAt(now + (spec.issuedAt ?? 0));
  const expiresIn = spec.expiresIn === undefined ? 300 : spec.expiresIn;
  if (expiresIn !== null) jwt.setExpirationTime(now + expiresIn);
  if (spec.notBefore !== undefined) jwt.setNotBefore(now + spec.notBefore);
  if (spec.audience !== undefined) jwt.setAudience(spec.audience);
  return jwt.sign(key.privateKey);
}
