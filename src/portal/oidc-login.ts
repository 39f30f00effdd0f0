import * as oidc from 'openid-client';
import { parseNationalId } from '../auth/index.js';
import { GatewayError } from '../errors/index.js';
import type { PendingLogin } from './session-store.js';

export interface OidcLoginOptions {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUri: string;
  readonly scopes: readonly string[];
  readonly nationalIdClaim: string;
  readonly acrValues?: string;
  /**
   * The development provider answers over plain HTTP on loopback; Pro Santé Connect never does
   * (production refuses a non-https issuer, config/schema.ts).
   */
  readonly allowHttp: boolean;
}

/** Who logged in, as the provider tells it. */
export interface LoggedInPerson {
  readonly nationalId: string;
  readonly name?: string;
}

/**
 * Login with Pro Santé Connect (OpenID Connect Core §3.1, authorization code flow) through
 * openid-client: PKCE (RFC 7636, S256), `state` against CSRF on the redirect and `nonce` against
 * ID-token replay, all checked by the library. The national id is read from the ID token, or from
 * userinfo when the ID token lacks it, under the same claim as XOAUTH2 tokens.
 */
export class OidcLogin {
  readonly #o: OidcLoginOptions;
  #config: Promise<oidc.Configuration> | undefined;

  constructor(options: OidcLoginOptions) {
    this.#o = options;
  }

  /** Discovery, once; retried at the next login when the issuer could not be reached. */
  #configuration(): Promise<oidc.Configuration> {
    this.#config ??= oidc
      .discovery(
        new URL(this.#o.issuer),
        this.#o.clientId,
        this.#o.clientSecret,
        undefined,
        this.#o.allowHttp ? { execute: [oidc.allowInsecureRequests] } : undefined,
      )
      .catch((err: unknown) => {
        this.#config = undefined;
        throw new GatewayError(
          'AUTH_ISSUER_UNAVAILABLE',
          `the identity provider ${this.#o.issuer} cannot be reached: ${(err as Error).message}`,
          { issuer: this.#o.issuer },
          { cause: err },
        );
      });
    return this.#config;
  }

  /** The provider's endpoints, for the mail clients' autoconfiguration. */
  async endpoints(): Promise<{ issuer: string; authorizationEndpoint: string; tokenEndpoint: string }> {
    const m = (await this.#configuration()).serverMetadata();
    return {
      issuer: m.issuer,
      authorizationEndpoint: m.authorization_endpoint ?? '',
      tokenEndpoint: m.token_endpoint ?? '',
    };
  }

  /** Where to send the browser, and what to keep until it comes back. */
  async start(): Promise<{ url: URL; pending: PendingLogin }> {
    const config = await this.#configuration();
    const codeVerifier = oidc.randomPKCECodeVerifier();
    const pending: PendingLogin = { state: oidc.randomState(), nonce: oidc.randomNonce(), codeVerifier };
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.#o.redirectUri,
      scope: this.#o.scopes.join(' '),
      code_challenge: await oidc.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: 'S256',
      state: pending.state,
      nonce: pending.nonce,
      ...(this.#o.acrValues === undefined ? {} : { acr_values: this.#o.acrValues }),
    });
    return { url, pending };
  }

  /** Exchanges the code of the redirect back (`currentUrl`) and names the person. */
  async finish(currentUrl: URL, pending: PendingLogin): Promise<LoggedInPerson> {
    const config = await this.#configuration();
    let tokens: Awaited<ReturnType<typeof oidc.authorizationCodeGrant>>;
    try {
      tokens = await oidc.authorizationCodeGrant(config, currentUrl, {
        pkceCodeVerifier: pending.codeVerifier,
        expectedState: pending.state,
        expectedNonce: pending.nonce,
        idTokenExpected: true,
      });
    } catch (err) {
      throw new GatewayError(
        'AUTH_TOKEN_INVALID',
        `the identity provider's answer was refused: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    const idClaims = tokens.claims();
    if (idClaims === undefined) throw new GatewayError('AUTH_TOKEN_INVALID', 'no ID token in the answer');
    let claims: Record<string, unknown> = idClaims;
    if (parseNationalId(claims[this.#o.nationalIdClaim]) === undefined) {
      claims = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    }
    const nationalId = parseNationalId(claims[this.#o.nationalIdClaim]);
    if (nationalId === undefined) {
      throw new GatewayError(
        'AUTH_TOKEN_INVALID',
        `neither the ID token nor userinfo has a national id in claim ${this.#o.nationalIdClaim}`,
      );
    }
    const name = [claims.given_name, claims.family_name].filter((v) => typeof v === 'string').join(' ');
    return { nationalId, ...(name === '' ? {} : { name }) };
  }
}
