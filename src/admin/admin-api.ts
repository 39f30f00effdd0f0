import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import { readSecretFile } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { BalRegistry, BalType } from '../registry/index.js';
import { ACTOR_HEADER, BearerTokenCheck, actorFromRequest } from './admin-auth.js';
import { BalSecrets, type SecretKeeper } from './bal-secrets.js';
import { registerBalRoutes } from './bal-routes.js';
import { type LifecycleRunAdmin, registerLifecycleRoutes } from './lifecycle-routes.js';
import { registerPublicationRoutes, type AdminPublicationDeps } from './publication-routes.js';
import { type QueueAdmin, registerQueueRoutes } from './queue-routes.js';
import { registerRightsRoutes } from './rights-routes.js';
import { registerSecretRoutes } from './secret-routes.js';
import { PROBLEM_CONTENT_TYPE, isServerProblem, problem, toProblem, type Problem } from './problem.js';

export interface AdminApiDeps {
  readonly registry: BalRegistry;
  readonly logger: Logger;
  /** Bearer token every request must carry. Give this or `tokenFile`, or neither (no authentication). */
  readonly token?: string;
  /** File holding the token (configuration `admin.tokenFile`); read once, here. */
  readonly tokenFile?: string;
  /** Largest request body in bytes; default 64 KiB (a BAL request is a few hundred bytes). */
  readonly bodyLimit?: number;
  /**
   * Operator-managed mailbox secrets (PLAIN/LOGIN). With them, the `/v1/bals/:address/secret` routes
   * exist and deleting a mailbox removes its secret; without them, neither.
   */
  readonly secrets?: AdminSecretDeps;
  /**
   * Publication in the national directory (PublicationService). With it, `GET /v1/bals/:address`
   * shows the publication state and `GET /v1/directory/drift` the last drift report.
   */
  readonly publication?: AdminPublicationDeps;
  /** The delivery queue: with it, the `/v1/queue` routes exist. */
  readonly queue?: QueueAdmin;
  /**
   * Reloads certificate, key, authorities, CRLs and the whitelist without a restart (as SIGHUP):
   * with it, `POST /v1/reload` exists.
   */
  readonly reload?: () => Promise<{ readonly certificateNotAfter: string }>;
  /** The daily lifecycle run at another instant: with it, `POST /v1/lifecycle/runs` exists. */
  readonly lifecycleRun?: LifecycleRunAdmin;
}

export interface AdminSecretDeps {
  /** The authenticator's SecretStore, so the API writes what logins check. */
  readonly store: SecretKeeper;
  /** Configuration `auth.passwordTypes`. */
  readonly passwordTypes: readonly BalType[];
  /** Where `registry.secret.set` and `registry.secret.removed` are recorded. */
  readonly journal: AuditJournal;
}

/**
 * Builds the admin HTTP API (routes in bal-routes.ts, rights-routes.ts and secret-routes.ts). It does not listen: the caller chooses the
 * address (configuration `admin.host`/`admin.port`, or port 0 in tests) and closes it on shutdown.
 */
export function buildAdminApi(deps: AdminApiDeps): FastifyInstance {
  const tokenCheck = resolveTokenCheck(deps);
  // Typed as fastify's logger interface so the instance is a plain FastifyInstance for route modules.
  const logger: FastifyBaseLogger = deps.logger.child({ component: 'admin-api' });
  const app = Fastify({
    loggerInstance: logger,
    // One line per request is written in onResponse below, with the outcome; fastify's own pair of
    // lines would duplicate it.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: deps.bodyLimit ?? 64 * 1024,
    // An address can be 254 characters; find-my-way's default parameter limit is 100.
    routerOptions: { maxParamLength: 400 },
    // Unknown fields are refused (not silently dropped) so a typo in a request is reported.
    ajv: { customOptions: { removeAdditional: false, allErrors: false } },
  });

  if (tokenCheck) {
    app.addHook('onRequest', (request, _reply, done) => {
      try {
        tokenCheck.check(request.headers.authorization);
        done();
      } catch (err) {
        done(err as Error);
      }
    });
  }
  // The problem code of each refused request, for its log line (requests are never mutated).
  const problems = new WeakMap<FastifyRequest, Problem>();
  const answerProblem = (request: FastifyRequest, reply: FastifyReply, p: Problem): FastifyReply => {
    problems.set(request, p);
    return reply.code(p.status).type(PROBLEM_CONTENT_TYPE).send(p);
  };
  app.addHook('onResponse', async (request, reply) => {
    const p = problems.get(request);
    request.log.info(
      {
        event: 'admin.request',
        method: request.method,
        url: request.url,
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime),
        remote: request.ip,
        ...(p === undefined ? {} : { code: p.code, detail: p.detail }),
      },
      'admin request',
    );
  });

  const actorOf = (request: FastifyRequest) =>
    actorFromRequest(request.headers[ACTOR_HEADER], request.ip, tokenCheck !== undefined);
  const secrets = deps.secrets && new BalSecrets({ registry: deps.registry, ...deps.secrets });
  const publication = deps.publication;
  registerBalRoutes(app, deps.registry, actorOf, {
    ...(secrets ? { afterDelete: (bal, actor) => secrets.forgetDeleted(bal, actor) } : {}),
    ...(publication ? { publication: (address: string) => publication.state(address) } : {}),
  });
  registerPublicationRoutes(app, publication);
  registerRightsRoutes(app, deps.registry, actorOf);
  if (secrets) registerSecretRoutes(app, secrets, actorOf);
  if (deps.queue) registerQueueRoutes(app, deps.queue, actorOf);
  if (deps.lifecycleRun) registerLifecycleRoutes(app, deps.lifecycleRun);
  const reload = deps.reload;
  if (reload) app.post('/v1/reload', async () => ({ reloaded: true, ...(await reload()) }));

  app.setNotFoundHandler(async (request, reply) => {
    const p = problem('ROUTE_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`, {
      instance: `urn:mssgw:request:${request.id}`,
    });
    return answerProblem(request, reply, p);
  });
  app.setErrorHandler(async (err, request, reply) => {
    const p = toProblem(err, request.id);
    // Our own failures get their cause logged; a client's mistake is in the request line only.
    if (isServerProblem(p)) request.log.error({ err, code: p.code }, 'admin request failed');
    return answerProblem(request, reply, p);
  });
  return app;
}

function resolveTokenCheck(deps: AdminApiDeps): BearerTokenCheck | undefined {
  if (deps.token !== undefined && deps.tokenFile !== undefined) {
    throw new GatewayError('CONFIG_INVALID', 'give the admin API token or a token file, not both');
  }
  if (deps.token !== undefined) return new BearerTokenCheck(deps.token);
  if (deps.tokenFile !== undefined) return new BearerTokenCheck(readTokenFile(deps.tokenFile));
  return undefined;
}

function readTokenFile(file: string): string {
  try {
    return readSecretFile(file);
  } catch (err) {
    throw new GatewayError(
      'CONFIG_INVALID',
      `cannot read the admin token file ${file} (admin.tokenFile): ${(err as Error).message}`,
      { key: 'admin.tokenFile', file },
      { cause: err },
    );
  }
}
