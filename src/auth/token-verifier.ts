import {
  decodeJwt,
  decodeProtectedHeader,
  errors,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
} from 'jose';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { AuthFailure } from './auth-failure.js';
import {
  IssuerUnavailableError,
  fileKeySource,
  remoteKeySource,
  type JwksSourceOptions,
} from './jwks-source.js';
import { parseNationalId } from './national-id.js';

/**
 * Offline verification of Pro Santé Connect access tokens (ARCHITECTURE.md §4): a JWT (RFC 7519)
 * signed by one of the configured issuers, checked against that issuer's JWKS without calling it
 * for each login. The token is never logged, stored or quoted in an error.
 */

export type TokenIssuer = Config['auth']['issuers'][number];

/** What a valid token proves. */
export interface VerifiedToken {
  /** The issuer's configured name (`psc-production`, `development`), the principal's `via`. */
  readonly issuer: string;
  /** The person's national id, from the issuer's `nationalIdClaim`. */
  readonly nationalId: string;
  readonly expiresAt: Date;
}

/** The seam the authenticator depends on (a test may substitute it). */
export interface TokenVerifier {
  /** Resolves with what the token proves, or rejects with an AuthFailure. */
  verify(token: string): Promise<VerifiedToken>;
  /** The issuer's OpenID discovery URL, for the OAUTHBEARER error (RFC 7628 §3.2.2). */
  openidConfigurationUrl(issuerName: string): string | undefined;
}

export interface JwtTokenVerifierOptions extends Omit<JwksSourceOptions, 'cacheSeconds' | 'onFetch'> {
  readonly issuers: readonly TokenIssuer[];
  readonly clockSkewSeconds: number;
  readonly jwksCacheSeconds: number;
  /** Production refuses development issuers (configuration `mode`). */
  readonly mode: Config['mode'];
  readonly clock: Clock;
  /** Told about every JWKS fetch, for `mssgw_auth_jwks_fetches_total{issuer,outcome}`. */
  readonly onJwksFetch?: (issuer: string, outcome: 'ok' | 'failed') => void;
}

/** Pro Santé Connect signs with RS256; PS256 and ES256 are the other asymmetric algorithms allowed. */
export const TOKEN_ALGORITHMS = ['RS256', 'PS256', 'ES256'] as const;
/** Larger than any access token an issuer produces: refuse before parsing. */
const MAX_TOKEN_LENGTH = 12 * 1024;

const invalid = (reason: string, message: string, issuer?: string): AuthFailure =>
  new AuthFailure('AUTH_TOKEN_INVALID', reason, message, issuer === undefined ? {} : { issuer });

interface IssuerEntry {
  readonly config: TokenIssuer;
  readonly keys: JWTVerifyGetKey;
}

export class JwtTokenVerifier implements TokenVerifier {
  readonly #issuers: ReadonlyMap<string, IssuerEntry>;
  readonly #skew: number;
  readonly #clock: Clock;

  constructor(options: JwtTokenVerifierOptions) {
    this.#skew = options.clockSkewSeconds;
    this.#clock = options.clock;
    const entries = new Map<string, IssuerEntry>();
    for (const config of options.issuers) {
      if (config.development && options.mode === 'production') {
        throw new GatewayError(
          'CONFIG_INVALID',
          `token issuer ${config.name} is a development issuer and mode is production; remove it from auth.issuers`,
          { key: 'auth.issuers', issuer: config.name },
        );
      }
      // The first entry for an `iss` wins; the configuration should not repeat one.
      if (!entries.has(config.issuer))
        entries.set(config.issuer, { config, keys: keySource(config, options) });
    }
    this.#issuers = entries;
  }

  openidConfigurationUrl(issuerName: string): string | undefined {
    const entry = [...this.#issuers.values()].find((e) => e.config.name === issuerName);
    // OpenID Connect Discovery 1.0 §4: the issuer URL + /.well-known/openid-configuration.
    return entry && `${entry.config.issuer.replace(/\/+$/, '')}/.well-known/openid-configuration`;
  }

  async verify(token: string): Promise<VerifiedToken> {
    const entry = this.#issuerOf(token);
    const { config } = entry;
    const now = this.#clock.now();
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, entry.keys, {
        issuer: config.issuer,
        ...(config.audience ? { audience: config.audience } : {}),
        algorithms: [...TOKEN_ALGORITHMS],
        clockTolerance: this.#skew,
        currentDate: now,
        // A token without an expiry would never expire: access tokens live minutes.
        requiredClaims: ['exp'],
      }));
    } catch (err) {
      // jose's errors may carry the claims: only their class is used, never attached.
      throw refusal(err, config.name);
    }
    return this.#claims(payload, config, now);
  }

  /** Picks the issuer by the unverified `iss`; the signature is then checked with its keys only. */
  #issuerOf(token: string): IssuerEntry {
    if (token.length > MAX_TOKEN_LENGTH) throw invalid('oversize', 'access token too long');
    let iss: unknown;
    let alg: unknown;
    try {
      alg = decodeProtectedHeader(token).alg;
      iss = decodeJwt(token).iss;
    } catch {
      throw invalid('malformed', 'access token is not a JWT (RFC 7519 §7.2)');
    }
    if (!(TOKEN_ALGORITHMS as readonly unknown[]).includes(alg)) {
      throw invalid('alg_not_allowed', `access token algorithm not allowed (${TOKEN_ALGORITHMS.join(', ')})`);
    }
    const entry = typeof iss === 'string' ? this.#issuers.get(iss) : undefined;
    if (!entry) throw invalid('unknown_issuer', 'access token from an issuer not in auth.issuers');
    return entry;
  }

  #claims(payload: JWTPayload, config: TokenIssuer, now: Date): VerifiedToken {
    const nowSeconds = Math.floor(now.getTime() / 1000);
    // jose checks iat only with maxTokenAge: a token issued in the future is refused here.
    if (typeof payload.iat === 'number' && payload.iat > nowSeconds + this.#skew) {
      throw invalid('claim_iat', 'access token issued in the future (iat)', config.name);
    }
    // OpenID Connect Core §2: azp is the client the token was issued to.
    if (
      config.authorizedParty &&
      !(typeof payload.azp === 'string' && config.authorizedParty.includes(payload.azp))
    ) {
      throw invalid('claim_azp', 'access token issued to a client not in authorizedParty (azp)', config.name);
    }
    const raw = payload[config.nationalIdClaim];
    if (raw === undefined) {
      throw invalid(
        'national_id_missing',
        `access token has no ${config.nationalIdClaim} claim`,
        config.name,
      );
    }
    const nationalId = parseNationalId(raw);
    if (nationalId === undefined) {
      throw invalid(
        'national_id_malformed',
        `access token ${config.nationalIdClaim} is not a national id (8+RPPS or 0+ADELI)`,
        config.name,
      );
    }
    return { issuer: config.name, nationalId, expiresAt: new Date((payload.exp ?? 0) * 1000) };
  }
}

function keySource(config: TokenIssuer, options: JwtTokenVerifierOptions): JWTVerifyGetKey {
  if (config.jwksFile !== undefined) return fileKeySource(config.jwksFile);
  if (config.jwksUrl === undefined) {
    throw new GatewayError('CONFIG_INVALID', `token issuer ${config.name} needs jwksUrl or jwksFile`, {
      key: 'auth.issuers',
      issuer: config.name,
    });
  }
  // The keys decide whom we trust: in production they come over TLS only (OpenID Connect Core 1.0
  // §16.17, TLS requirements); plain http is for a local test issuer.
  if (options.mode === 'production' && new URL(config.jwksUrl).protocol !== 'https:') {
    throw new GatewayError(
      'CONFIG_INVALID',
      `token issuer ${config.name}: jwksUrl must be https in production`,
      {
        key: 'auth.issuers',
        issuer: config.name,
      },
    );
  }
  const { onJwksFetch } = options;
  return remoteKeySource(config.jwksUrl, {
    ...options,
    cacheSeconds: options.jwksCacheSeconds,
    ...(onJwksFetch ? { onFetch: (outcome: 'ok' | 'failed') => onJwksFetch(config.name, outcome) } : {}),
  });
}

/** Turns what jwtVerify threw into the refusal: temporary when the keys could not be had. */
function refusal(err: unknown, issuer: string): AuthFailure {
  if (err instanceof IssuerUnavailableError || err instanceof errors.JWKSTimeout) {
    const reason = err instanceof IssuerUnavailableError ? err.reason : 'timeout';
    return new AuthFailure(
      'AUTH_ISSUER_UNAVAILABLE',
      'issuer_unavailable',
      `keys of issuer ${issuer} unavailable`,
      {
        issuer,
        cause: reason,
      },
    );
  }
  if (err instanceof errors.JWTExpired) {
    return new AuthFailure('AUTH_TOKEN_EXPIRED', 'token_expired', 'access token expired (exp)', { issuer });
  }
  if (err instanceof errors.JWTClaimValidationFailed) {
    return invalid(`claim_${err.claim}`, `access token claim ${err.claim} refused (${err.reason})`, issuer);
  }
  if (err instanceof errors.JWKSNoMatchingKey) {
    return invalid('unknown_kid', 'access token signed with a key the issuer does not publish', issuer);
  }
  if (err instanceof errors.JWSSignatureVerificationFailed) {
    return invalid('bad_signature', 'access token signature does not verify', issuer);
  }
  if (err instanceof errors.JOSEAlgNotAllowed)
    return invalid('alg_not_allowed', 'algorithm not allowed', issuer);
  return invalid('malformed', 'access token not valid', issuer);
}
