import { createSecureContext } from 'node:tls';
import type { AddressInfo } from 'node:net';
import fastifyCookie from '@fastify/cookie';
import fastifyCsrf from '@fastify/csrf-protection';
import fastifyFormbody from '@fastify/formbody';
import fastifyHelmet from '@fastify/helmet';
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import { readSecretFile } from '../config/index.js';
import { GatewayError, toGatewayError } from '../errors/index.js';
import { explainListen } from '../shared/index.js';
import { DEV_PROVIDER_CLIENT, startDevProvider, type DevProvider } from './dev-provider.js';
import { COOKIE_OPTIONS, CSRF_COOKIE } from './cookies.js';
import { OidcLogin } from './oidc-login.js';
import type { PortalDeps } from './portal-deps.js';
import { registerPortalRoutes, type BoundPortal } from './portal-routes.js';
import { SessionStore } from './session-store.js';

export interface Portal {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Bound address once started. */
  address(): AddressInfo | undefined;
  /** The portal's public URL once started. */
  publicUrl(): string | undefined;
  /** The development provider's issuer URL, when it runs. */
  devIssuer(): string | undefined;
  /** Puts a renewed certificate in service without a restart. */
  reloadTrust(): void;
}

/**
 * The professionals' portal (issue #13) on its own HTTPS listener with our certificate. Secure by
 * default: strict Content-Security-Policy (same-origin only, no script at all), HSTS, no framing;
 * session cookies HttpOnly, Secure, SameSite=Lax; CSRF token on every change; idle and absolute
 * session expiry (session-store.ts). Login with Pro Santé Connect (oidc-login.ts), or in
 * development with the local provider this builder starts (dev-provider.ts).
 */
export function buildPortal(deps: PortalDeps): Portal {
  const settings = deps.config.portal;
  let app: FastifyInstance | undefined;
  let dev: DevProvider | undefined;
  let publicUrl: string | undefined;
  const sessions = new SessionStore({
    redis: deps.redis,
    prefix: deps.config.redis.prefix,
    idleSeconds: settings.sessionIdleMinutes * 60,
    maxSeconds: Math.round(settings.sessionMaxHours * 3600),
    clock: deps.clock,
  });

  const start = async (): Promise<void> => {
    const tls = deps.tls();
    app = Fastify({
      https: { cert: tls.cert, key: tls.key, minVersion: deps.config.tls.minVersion },
      logger: false,
      bodyLimit: 16 * 1024,
      trustProxy: false,
    });
    await app.register(fastifyHelmet, {
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'none'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'"],
          objectSrc: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'self'"],
          frameAncestors: ["'none'"],
        },
      },
      crossOriginEmbedderPolicy: false,
    });
    await app.register(fastifyCookie);
    await app.register(fastifyFormbody);
    await app.register(fastifyCsrf, {
      sessionPlugin: '@fastify/cookie',
      cookieKey: CSRF_COOKIE,
      cookieOpts: COOKIE_OPTIONS,
      getToken: (req: FastifyRequest) => (req.body as Record<string, string> | undefined)?._csrf,
    });
    app.addHook('onSend', (_req, reply, payload, done) => {
      // Pages show personal data: never stored by a shared cache or the browser's history cache.
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
      done(null, payload);
    });
    // Known once the listener is bound (port 0 in tests), and routes must be added before listen.
    const state: { bound?: BoundPortal } = {};
    registerPortalRoutes(app, {
      deps,
      sessions,
      bound: () => {
        if (state.bound === undefined)
          throw new GatewayError('INTERNAL', 'portal request before it was bound');
        return state.bound;
      },
    });
    const { host, port } = settings;
    await app.listen({ host, port }).catch(explainListen('portal', 'portal.port', host, port));
    const where = app.server.address() as AddressInfo;
    publicUrl = (settings.publicUrl ?? `https://localhost:${where.port}`).replace(/\/+$/, '');
    const redirectUri = settings.oidc.redirectUri ?? `${publicUrl}/connexion/retour`;
    state.bound = { login: await loginOf(redirectUri), publicUrl, redirectUri };
    deps.logger.info(
      { event: 'portal.listening', address: `${where.address}:${where.port}`, publicUrl },
      'portal',
    );
  };

  /** Pro Santé Connect as configured, or the development provider started here. */
  const loginOf = async (redirectUri: string): Promise<OidcLogin> => {
    const { oidc, devProvider } = settings;
    if (oidc.issuer === undefined) {
      if (!devProvider.enabled) {
        throw new GatewayError(
          'CONFIG_INVALID',
          'portal.oidc.issuer is required (or portal.devProvider.enabled in development)',
          { key: 'portal.oidc.issuer' },
        );
      }
      dev = await startDevProvider({
        host: devProvider.host,
        port: devProvider.port,
        redirectUris: [redirectUri],
        nationalIdClaim: oidc.nationalIdClaim,
        notice: (text) =>
          deps.logger.warn({ event: 'portal.dev_provider.notice', text }, 'OpenID provider notice'),
      }).catch(
        explainListen(
          'development OpenID provider',
          'portal.devProvider.port',
          devProvider.host,
          devProvider.port,
        ),
      );
      deps.logger.warn(
        { event: 'portal.dev_provider.started', issuer: dev.issuer },
        'development OpenID provider started (never in production)',
      );
      return new OidcLogin({
        issuer: dev.issuer,
        clientId: DEV_PROVIDER_CLIENT.clientId,
        clientSecret: DEV_PROVIDER_CLIENT.clientSecret,
        redirectUri,
        scopes: oidc.scopes,
        nationalIdClaim: oidc.nationalIdClaim,
        allowHttp: true,
      });
    }
    if (oidc.clientSecretFile === undefined) {
      throw new GatewayError('CONFIG_INVALID', 'portal.oidc.clientSecretFile is required', {
        key: 'portal.oidc.clientSecretFile',
      });
    }
    return new OidcLogin({
      issuer: oidc.issuer,
      clientId: oidc.clientId,
      clientSecret: readSecretFile(oidc.clientSecretFile),
      redirectUri,
      scopes: oidc.scopes,
      nationalIdClaim: oidc.nationalIdClaim,
      ...(oidc.acrValues === undefined ? {} : { acrValues: oidc.acrValues }),
      // A development issuer on loopback (never in production: config/schema.ts refuses it).
      allowHttp:
        deps.config.mode === 'development' && /^http:\/\/(127\.|localhost|\[::1\])/.test(oidc.issuer),
    });
  };

  return {
    start,
    stop: async () => {
      await app?.close();
      await dev?.close();
    },
    address: () => (app?.server.listening ? (app.server.address() as AddressInfo) : undefined),
    publicUrl: () => publicUrl,
    devIssuer: () => dev?.issuer,
    reloadTrust: () => {
      const server = app?.server as unknown as { setSecureContext?: (o: object) => void } | undefined;
      try {
        const tls = deps.tls();
        // Checked first: a bad pair throws here and the context in service stays.
        createSecureContext({ cert: tls.cert, key: tls.key });
        server?.setSecureContext?.({ cert: tls.cert, key: tls.key, minVersion: deps.config.tls.minVersion });
      } catch (err) {
        deps.logger.error({ event: 'portal.tls_reload_failed', err: toGatewayError(err).message }, 'kept');
      }
    },
  };
}
