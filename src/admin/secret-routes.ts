import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor } from '../registry/index.js';
import type { BalSecrets } from './bal-secrets.js';

/**
 * The secret of a mailbox (PLAIN/LOGIN, only for the types in `auth.passwordTypes`), a resource of
 * its own so that `GET /v1/bals/:address` stays the registry record:
 *
 * - `GET    /v1/bals/:address/secret`  `{ address, type, hasSecret, allowed }`, never the secret or its hash
 * - `PUT    /v1/bals/:address/secret`  `{ "secret": "..." }` → 204; sets or replaces it
 * - `DELETE /v1/bals/:address/secret`  → 204; 404 SECRET_NOT_FOUND when there is none
 *
 * Deleting the mailbox (`DELETE /v1/bals/:address`) removes its secret too. The body's secret is
 * checked by BalSecrets, not the schema, so that every refusal states the same limits.
 */

const addressParams = {
  type: 'object',
  required: ['address'],
  properties: { address: { type: 'string', minLength: 1, maxLength: 320 } },
} as const;

const setSchema = {
  params: addressParams,
  body: {
    type: 'object',
    required: ['secret'],
    additionalProperties: false,
    properties: { secret: { type: 'string' } },
  },
} as const;

interface AddressRoute {
  Params: { address: string };
}
interface SetRoute extends AddressRoute {
  Body: { secret: string };
}

export function registerSecretRoutes(
  app: FastifyInstance,
  secrets: BalSecrets,
  actorOf: (request: FastifyRequest) => Actor,
): void {
  app.get<AddressRoute>(
    '/v1/bals/:address/secret',
    { schema: { params: addressParams } },
    async (request) => {
      return secrets.status(request.params.address);
    },
  );

  app.put<SetRoute>('/v1/bals/:address/secret', { schema: setSchema }, async (request, reply) => {
    await secrets.set(request.params.address, request.body.secret, actorOf(request));
    return reply.code(204).send();
  });

  app.delete<AddressRoute>(
    '/v1/bals/:address/secret',
    { schema: { params: addressParams } },
    async (request, reply) => {
      await secrets.remove(request.params.address, actorOf(request));
      return reply.code(204).send();
    },
  );
}
