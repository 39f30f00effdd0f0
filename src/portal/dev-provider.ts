import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Configuration, default as ProviderClass } from 'oidc-provider';
import { generateJwkPair } from '../shared/index.js';

/**
 * The local OpenID provider standing in for Pro Santé Connect in development and in tests
 * (issue #13: "a real local OpenID provider ... so the portal's code path is the production one").
 * It is oidc-provider, a certified implementation, with its built-in development login form: type
 * the national id of a development person as the login, any password. Production refuses it
 * (portal.devProvider.enabled, config/schema.ts).
 */

/** The development people, shaped like Pro Santé Connect's: the national id is in SubjectNameID. */
export const DEV_PEOPLE: ReadonlyArray<{
  readonly nationalId: string;
  readonly givenName: string;
  readonly familyName: string;
  readonly profession: string;
}> = [
  { nationalId: '810000000001', givenName: 'Jean', familyName: 'Martin', profession: 'Médecin' },
  {
    nationalId: '810000000002',
    givenName: 'Claire',
    familyName: 'Durand',
    profession: 'Secrétaire médicale',
  },
  { nationalId: '810000000003', givenName: 'Sofia', familyName: 'Leroy', profession: 'Infirmière' },
];

/** The portal's client at the development provider. Not a secret: development only. */
export const DEV_PROVIDER_CLIENT = { clientId: 'mssgw-portal', clientSecret: 'mssgw-portal-development' };

/**
 * Mail software's client at the development provider, as Thunderbird is one at Pro Santé Connect: a
 * public client (no secret, PKCE), redirected to a loopback address, receiving a signed JWT
 * access token for IMAP and submission (XOAUTH2/OAUTHBEARER).
 */
export const DEV_MAIL_CLIENT = { clientId: 'mssgw-mail-client', redirectUri: 'http://127.0.0.1/oauth2' };

/** The resource (audience) of the mail access tokens: IMAP and submission of this gateway. */
export const DEV_MAIL_RESOURCE = 'urn:mssgw:mail';

/** Claims of the scope Pro Santé Connect names `scope_all`. */
const PERSON_CLAIMS = ['SubjectNameID', 'given_name', 'family_name', 'SubjectRole'];

export interface DevProviderOptions {
  readonly host: string;
  readonly port: number;
  /** The portal's redirect URIs (known once the portal listens). */
  readonly redirectUris: readonly string[];
  /** Claim holding the national id; default SubjectNameID. */
  readonly nationalIdClaim?: string;
  /** Where the package's own notices go (it prints them on the console otherwise). */
  readonly notice?: (text: string) => void;
}

export interface DevProvider {
  readonly issuer: string;
  readonly address: AddressInfo;
  close(): Promise<void>;
}

/**
 * Loads oidc-provider, whose import prints notices (e.g. about the Node.js version) with console.warn:
 * they go to `notice` instead, so that the gateway's stderr stays JSON lines (issue #11 item 8).
 */
async function loadProvider(notice: (text: string) => void): Promise<typeof ProviderClass> {
  /* eslint-disable no-console -- swapped for the time of the import only */
  const { warn, info } = console;
  console.warn = console.info = (...args: unknown[]) => notice(args.map(String).join(' '));
  try {
    return (await import('oidc-provider')).default;
  } finally {
    console.warn = warn;
    console.info = info;
  }
  /* eslint-enable no-console */
}

export async function startDevProvider(options: DevProviderOptions): Promise<DevProvider> {
  // A fresh signing key per start: tokens of an earlier run are refused, none of oidc-provider's
  // built-in development keys is trusted. Generated in the thread pool while oidc-provider loads:
  // on the main thread it held every start up for 0.1 to 0.5 s. Exported as a JWK by the generation
  // itself (see generateJwkPair: a Node 20 deadlock).
  const keyPair = generateJwkPair('RS256');
  keyPair.catch(() => undefined); // awaited below, after the import and the listen
  const Provider = await loadProvider(options.notice ?? (() => {}));
  const server: Server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const issuer = `http://${host}:${address.port}`;
  const claim = options.nationalIdClaim ?? 'SubjectNameID';
  const claims = [...new Set([claim, ...PERSON_CLAIMS])];
  const signingKey = {
    ...(await keyPair).privateJwk,
    kid: randomBytes(8).toString('hex'),
    use: 'sig',
    alg: 'RS256',
  };
  const configuration: Configuration = {
    jwks: { keys: [signingKey] },
    clients: [
      {
        client_id: DEV_PROVIDER_CLIENT.clientId,
        client_secret: DEV_PROVIDER_CLIENT.clientSecret,
        redirect_uris: [...options.redirectUris],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      {
        client_id: DEV_MAIL_CLIENT.clientId,
        redirect_uris: [DEV_MAIL_CLIENT.redirectUri],
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
        // Not application_type native: oidc-provider then asks for consent at every login.
      },
    ],
    scopes: ['openid', 'scope_all'],
    claims: { openid: ['sub'], scope_all: claims },
    // As Pro Santé Connect does, the person's claims are in the ID token too.
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    features: {
      devInteractions: { enabled: true },
      // The mail client's access token is a JWT with the national id, shaped like Pro Santé
      // Connect's, so that the gateway's token verifier checks it as it checks PSC's (JWKS, iss, exp).
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx, client) =>
          client?.clientId === DEV_MAIL_CLIENT.clientId ? DEV_MAIL_RESOURCE : undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'scope_all',
          audience: DEV_MAIL_RESOURCE,
          accessTokenFormat: 'jwt',
          accessTokenTTL: 600,
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
    extraTokenClaims: (_ctx, token) =>
      'accountId' in token && typeof token.accountId === 'string' ? { [claim]: token.accountId } : undefined,
    findAccount: (_ctx, id) => {
      const person = DEV_PEOPLE.find((p) => p.nationalId === id.trim());
      if (person === undefined) return undefined;
      return {
        accountId: person.nationalId,
        claims: () => ({
          sub: person.nationalId,
          [claim]: person.nationalId,
          given_name: person.givenName,
          family_name: person.familyName,
          SubjectRole: [person.profession],
        }),
      };
    },
    // A first-party client: no consent screen, every claim of the asked scopes granted.
    loadExistingGrant: async (ctx) => {
      const { session, client } = ctx.oidc;
      if (session?.accountId === undefined || client === undefined) return undefined;
      const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
      grant.addOIDCScope('openid scope_all');
      grant.addOIDCClaims(claims);
      if (client.clientId === DEV_MAIL_CLIENT.clientId)
        grant.addResourceScope(DEV_MAIL_RESOURCE, 'scope_all');
      await grant.save();
      return grant;
    },
  };
  const provider = new Provider(issuer, configuration);
  const handle = provider.callback();
  server.on('request', (req, res) => void handle(req, res));
  return {
    issuer,
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
