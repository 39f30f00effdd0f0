import type { FastifyInstance, FastifyRequest } from 'fastify';
import { GatewayError } from '../errors/index.js';
import type { PublicationState } from '../publication/index.js';
import {
  BAL_STATUSES,
  BAL_TYPES,
  MAX_LIST_LIMIT,
  type Actor,
  type Bal,
  type BalMetadataPatch,
  type BalRegistry,
  type BalStatus,
  type BalType,
} from '../registry/index.js';
import { addressKey } from '../shared/index.js';

/**
 * The `/v1/bals` routes. Schemas check the shape of a request (strings, known fields); the registry
 * checks the meaning (address syntax, our domains, type, owner) so the rules live in one place and
 * the CLI gets the same messages.
 */

// RFC 5321 caps an address at 254 octets; the slack lets the registry report the exact problem.
const addressString = { type: 'string', minLength: 1, maxLength: 320 } as const;

// Published metadata (registry/bal-metadata.ts checks lengths and content); null removes a text.
const metadataText = { type: ['string', 'null'], maxLength: 2000 } as const;
const metadataProperties = {
  listeRouge: { type: 'boolean' },
  description: metadataText,
  service: metadataText,
  responsible: metadataText,
} as const;

const createSchema = {
  body: {
    type: 'object',
    required: ['address', 'type', 'owner'],
    additionalProperties: false,
    properties: {
      address: addressString,
      type: { type: 'string', maxLength: 16 },
      owner: { type: 'string', maxLength: 64 },
      ...metadataProperties,
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
  Body: { address: string; type: string; owner: string } & BalMetadataPatch;
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
  /** With it, `GET /v1/bals/:address` adds `publication` (null when the mailbox has no state yet). */
  readonly publication?: (address: string) => Promise<PublicationState | null>;
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
    if (!hooks.publication) return bal;
    return { ...bal, publication: await hooks.publication(bal.address) };
  });

  registerMetadataRoute(app, registry, actorOf);

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
  const normalised = addressKey(address);
  return new GatewayError(
    'BAL_NOT_FOUND',
    `no mailbox ${normalised} in the registry (mssgw bal list, or GET /v1/bals, lists them)`,
    {
      address: normalised,
    },
  );
}

// Address, type and owner are accepted by the schema only to be refused with their own message.
const updateSchema = {
  params: addressParams,
  body: {
    type: 'object',
    additionalProperties: false,
    properties: { ...metadataProperties, address: {}, type: {}, owner: {} },
  },
} as const;

interface UpdateRoute extends AddressRoute {
  Body: BalMetadataPatch & { address?: unknown; type?: unknown; owner?: unknown };
}

/** `PATCH /v1/bals/:address`: the published metadata (red list, description, service, responsible). */
function registerMetadataRoute(
  app: FastifyInstance,
  registry: BalRegistry,
  actorOf: (request: FastifyRequest) => Actor,
): void {
  app.patch<UpdateRoute>('/v1/bals/:address', { schema: updateSchema }, async (request) => {
    const { address, type, owner, ...patch } = request.body;
    const fixed = Object.entries({ address, type, owner }).find(([, v]) => v !== undefined)?.[0];
    if (fixed !== undefined) {
      throw new GatewayError(
        'BAL_FIELD_IMMUTABLE',
        `${fixed} of a mailbox never changes (MSSanté addresses and types are fixed at creation); ` +
          'create another mailbox instead',
        { field: fixed },
      );
    }
    if (Object.keys(patch).length === 0) {
      throw new GatewayError(
        'REQUEST_INVALID',
        `give at least one of ${Object.keys(metadataProperties).join(', ')} to change`,
      );
    }
    return registry.updateMetadata(request.params.address, patch, actorOf(request));
  });
}
