import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Actor, BalRegistry } from '../registry/index.js';

/**
 * Rights and activity routes:
 *
 * - `GET    /v1/bals/:address/rights`      every grant, expired ones flagged `expired: true`
 * - `POST   /v1/bals/:address/rights`      `{ right, person? | certificateDn?, scopes?, expiresAt? }` → 201
 * - `DELETE /v1/bals/:address/rights?person=ID` or `?certificateDn=DN` → the removed grant. The subject
 *   is in the query, not a body: proxies and clients may drop the body of a DELETE.
 * - `GET    /v1/persons/:nationalId/bals`  which mailboxes this person may open
 * - `GET    /v1/bals/:address/activity`    last use per channel
 *
 * As for the BAL routes, schemas check the shape and the registry checks the meaning.
 */

const addressParams = {
  type: 'object',
  required: ['address'],
  properties: { address: { type: 'string', minLength: 1, maxLength: 320 } },
} as const;

// A certificate subject DN is rarely over 300 characters; the slack keeps odd but valid ones.
const dnString = { type: 'string', minLength: 1, maxLength: 2048 } as const;
const personString = { type: 'string', maxLength: 64 } as const;

const grantSchema = {
  params: addressParams,
  body: {
    type: 'object',
    required: ['right'],
    additionalProperties: false,
    properties: {
      right: { type: 'string', maxLength: 32 },
      person: personString,
      certificateDn: dnString,
      scopes: { type: 'array', maxItems: 8, items: { type: 'string', maxLength: 16 } },
      expiresAt: { type: 'string', maxLength: 64 },
    },
  },
} as const;

const revokeSchema = {
  params: addressParams,
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: { person: personString, certificateDn: dnString },
  },
} as const;

const personSchema = {
  params: {
    type: 'object',
    required: ['nationalId'],
    properties: { nationalId: { type: 'string', minLength: 1, maxLength: 64 } },
  },
} as const;

interface AddressRoute {
  Params: { address: string };
}
interface GrantRoute extends AddressRoute {
  Body: { right: string; person?: string; certificateDn?: string; scopes?: string[]; expiresAt?: string };
}
interface RevokeRoute extends AddressRoute {
  Querystring: { person?: string; certificateDn?: string };
}
interface PersonRoute {
  Params: { nationalId: string };
}

export function registerRightsRoutes(
  app: FastifyInstance,
  registry: BalRegistry,
  actorOf: (request: FastifyRequest) => Actor,
): void {
  app.get<AddressRoute>(
    '/v1/bals/:address/rights',
    { schema: { params: addressParams } },
    async (request) => {
      return { items: await registry.grants(request.params.address) };
    },
  );

  app.post<GrantRoute>('/v1/bals/:address/rights', { schema: grantSchema }, async (request, reply) => {
    const granted = await registry.grant(request.params.address, request.body, actorOf(request));
    return reply
      .code(201)
      .header('location', `/v1/bals/${encodeURIComponent(granted.address)}/rights`)
      .send(granted);
  });

  app.delete<RevokeRoute>('/v1/bals/:address/rights', { schema: revokeSchema }, async (request) => {
    return registry.revoke(request.params.address, request.query, actorOf(request));
  });

  app.get<PersonRoute>('/v1/persons/:nationalId/bals', { schema: personSchema }, async (request) => {
    const { nationalId } = request.params;
    return { nationalId: nationalId.trim().toUpperCase(), items: await registry.balsForPerson(nationalId) };
  });

  app.get<AddressRoute>(
    '/v1/bals/:address/activity',
    { schema: { params: addressParams } },
    async (request) => {
      return registry.activity(request.params.address);
    },
  );
}
