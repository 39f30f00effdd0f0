import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors/index.js';
import {
  BAL_STATUSES,
  BAL_TYPES,
  MAX_LIST_LIMIT,
  normaliseAddress,
  type Actor,
  type Bal,
  type BalRegistry,
  type BalStatus,
  type BalType,
} from '../registry/index.js';

/**
 * The `/v1/bals` routes. Schemas check the shape of a request (strings, known fields); the registry
 * checks the meaning (address syntax, our domains, type, owner) so the rules live in one place and
 * the CLI gets the same messages.
 */

// RFC 5321 caps an address at 254 octets; the slack lets the registry report the exact problem.
const addressString = { type: 'string', minLength: 1, maxLength: 320 } as const;

const createSchema = {
  body: {
    type: 'object',
    required: ['address', 'type', 'owner'],
    additionalProperties: false,
    properties: {
      address: addressString,
      type: { type: 'string', maxLength: 16 },
      owner: { type: 'string', maxLength: 64 },
    },
  },
} as const;

const listSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      status: { type: 'string', enum: BAL_STATUSES },
      type: { type: 'string', enum: BAL_TYPES },
      cursor: { type: 'string', minLength: 1, maxLength: 512 },
      limit: { type: 'integer', minimum: 1, maximum: MAX_LIST_LIMIT },
    },
  },
} as const;

const addressParams = {
  type: 'object',
  required: ['address'],
  properties: { address: addressString },
} as const;

const suspendSchema = {
  params: addressParams,
  body: {
    type: ['object', 'null'],
    additionalProperties: false,
    properties: { reason: { type: 'string', maxLength: 500 } },
  },
} as const;

interface CreateRoute {
  Body: { address: string; type: string; owner: string };
}
interface ListRoute {
  Querystring: { status?: BalStatus; type?: BalType; cursor?: string; limit?: number };
}
interface AddressRoute {
  Params: { address: string };
}
interface SuspendRoute extends AddressRoute {
  Body: { reason?: string } | null | undefined;
}

export interface BalRouteHooks {
  /** Runs once a mailbox is deleted, before the answer (admin-api.ts removes its secret here). */
  readonly afterDelete?: (bal: Bal, actor: Actor) => Promise<void>;
}

export function registerBalRoutes(
  app: FastifyInstance,
  registry: BalRegistry,
  actorOf: (request: FastifyRequest) => Actor,
  hooks: BalRouteHooks = {},
): void {
  app.post<CreateRoute>('/v1/bals', { schema: createSchema }, async (request, reply) => {
    const bal = await registry.create(request.body, actorOf(request));
    return reply
      .code(201)
      .header('location', `/v1/bals/${encodeURIComponent(bal.address)}`)
      .send(bal);
  });

  app.get<ListRoute>('/v1/bals', { schema: listSchema }, async (request) => {
    const { status, type, cursor, limit } = request.query;
    return registry.list({
      ...(status === undefined ? {} : { status }),
      ...(type === undefined ? {} : { type }),
      ...(cursor === undefined ? {} : { cursor }),
      ...(limit === undefined ? {} : { limit }),
    });
  });

  app.get<AddressRoute>('/v1/bals/:address', { schema: { params: addressParams } }, async (request) => {
    const bal = await registry.get(request.params.address);
    if (!bal) throw notFound(request.params.address);
    return bal;
  });

  app.post<SuspendRoute>('/v1/bals/:address/suspend', { schema: suspendSchema }, async (request) => {
    return registry.suspend(request.params.address, actorOf(request), request.body?.reason);
  });

  app.post<AddressRoute>(
    '/v1/bals/:address/resume',
    { schema: { params: addressParams } },
    async (request) => {
      return registry.resume(request.params.address, actorOf(request));
    },
  );

  app.delete<AddressRoute>('/v1/bals/:address', { schema: { params: addressParams } }, async (request) => {
    const actor = actorOf(request);
    const deleted = await registry.delete(request.params.address, actor);
    await hooks.afterDelete?.(deleted, actor);
    return deleted;
  });
}

function notFound(address: string): GatewayError {
  const normalised = normaliseAddress(address);
  return new GatewayError(
    'BAL_NOT_FOUND',
    `no mailbox ${normalised} in the registry (GET /v1/bals lists them)`,
    {
      address: normalised,
    },
  );
}
