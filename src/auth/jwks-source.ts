import { readFile } from 'node:fs/promises';
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  errors,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
} from 'jose';
import { GatewayError } from '../errors/index.js';

/**
 * Where the signing keys of one token issuer come from: its JWKS URL (Keycloak's
 * `protocol/openid-connect/certs`) or a local JWKS file (the development issuer).
 *
 * Every failure to obtain the key set itself (network, HTTP status, a body that is no JWKS, an
 * unreadable file) surfaces as IssuerUnavailableError, so the verifier can tell "we could not check"
 * (temporary) from "the token is bad" (permanent) without inspecting jose's messages.
 */
export class IssuerUnavailableError extends GatewayError {
  /** Bounded label: `network`, `http_503`, `not_jwks`, `retry_delay`, `jwks_file`. */
  readonly reason: string;

  constructor(reason: string, options?: ErrorOptions) {
    super('AUTH_ISSUER_UNAVAILABLE', `issuer key set unavailable (${reason})`, { reason }, options);
    this.name = 'IssuerUnavailableError';
    this.reason = reason;
  }
}

export interface JwksSourceOptions {
  /** How long a fetched key set is trusted (configuration `auth.jwksCacheSeconds`). */
  readonly cacheSeconds: number;
  /**
   * Least time between two fetches caused by a token naming a key id we do not have: a flood of
   * forged tokens with random `kid`s costs the issuer one request per cooldown. Default 30 s.
   */
  readonly cooldownSeconds?: number;
  /**
   * After a failed fetch, further verifications fail at once for this long instead of asking the
   * issuer again (the cooldown only counts from successful fetches). Default 5 s.
   */
  readonly retryDelaySeconds?: number;
  /** Per-fetch time limit. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Told about every fetch from the network, for a metric. */
  readonly onFetch?: (outcome: 'ok' | 'failed') => void;
}

function isJwks(value: unknown): value is JSONWebKeySet {
  return (
    typeof value === 'object' &&
    value !== null &&
    Array.isArray((value as { keys?: unknown }).keys) &&
    (value as { keys: unknown[] }).keys.every((k) => typeof k === 'object' && k !== null)
  );
}

/** The fetch jose uses: classifies failures, and refuses to call a failing issuer too often. */
function guardedFetch(options: JwksSourceOptions): FetchImplementation {
  const retryDelayMs = (options.retryDelaySeconds ?? 5) * 1000;
  let failedAt = Number.NEGATIVE_INFINITY;
  return async (url, init) => {
    if (Date.now() - failedAt < retryDelayMs) throw new IssuerUnavailableError('retry_delay');
    try {
      const response = await fetch(url, init).catch((err: unknown) => {
        throw new IssuerUnavailableError('network', { cause: err });
      });
      if (response.status !== 200) throw new IssuerUnavailableError(`http_${response.status}`);
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (err) {
        throw new IssuerUnavailableError('not_jwks', { cause: err });
      }
      if (!isJwks(body)) throw new IssuerUnavailableError('not_jwks');
      options.onFetch?.('ok');
      return new Response(text, { status: 200, headers: { 'content-type': 'application/json' } });
    } catch (err) {
      failedAt = Date.now();
      options.onFetch?.('failed');
      throw err instanceof IssuerUnavailableError
        ? err
        : new IssuerUnavailableError('network', { cause: err });
    }
  };
}

/**
 * jose's remote key set: cached for `cacheSeconds`, fetched again when a token names an unknown
 * `kid` (key rotation) at most once per cooldown. Its timers use the system clock.
 */
export function remoteKeySource(url: string, options: JwksSourceOptions): JWTVerifyGetKey {
  return createRemoteJWKSet(new URL(url), {
    cacheMaxAge: options.cacheSeconds * 1000,
    cooldownDuration: (options.cooldownSeconds ?? 30) * 1000,
    timeoutDuration: options.timeoutMs ?? 5000,
    [customFetch]: guardedFetch(options),
  });
}

/** A local JWKS file, read on first use and again when a token names a `kid` it lacks. */
export function fileKeySource(file: string): JWTVerifyGetKey {
  let local: ReturnType<typeof createLocalJWKSet> | undefined;
  const load = async (): Promise<ReturnType<typeof createLocalJWKSet>> => {
    try {
      const body: unknown = JSON.parse(await readFile(file, 'utf8'));
      if (!isJwks(body)) throw new GatewayError('AUTH_ISSUER_UNAVAILABLE', 'not a JWKS');
      local = createLocalJWKSet(body);
      return local;
    } catch (err) {
      throw new IssuerUnavailableError('jwks_file', { cause: err });
    }
  };
  return async (header, token) => {
    const keys = local ?? (await load());
    try {
      return await keys(header, token);
    } catch (err) {
      if (!(err instanceof errors.JWKSNoMatchingKey)) throw err;
      return (await load())(header, token);
    }
  };
}
