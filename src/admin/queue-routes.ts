import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { QueueEntry } from '../delivery/index.js';
import type { Actor } from '../registry/index.js';

/** A job of the delivery queue as the API shows it (JSON of delivery/QueueEntry). */
export type QueueJobView = QueueEntry;

/** What the queue routes need; the composition root implements it over the delivery queue. */
export interface QueueAdmin {
  list(options: { states?: readonly string[]; limit?: number }): Promise<readonly QueueJobView[]>;
  show(id: string): Promise<QueueJobView>;
  retry(id: string, actor: Actor): Promise<QueueJobView>;
  /** Gives up on the job's pending recipients (failure DSN to the sender) and removes it. */
  remove(id: string, actor: Actor): Promise<unknown>;
}

const STATES = ['active', 'waiting', 'delayed', 'failed'] as const;

const idParams = {
  type: 'object',
  required: ['id'],
  properties: { id: { type: 'string', minLength: 3, maxLength: 300 } },
} as const;

const listSchema = {
  querystring: {
    type: 'object',
    additionalProperties: false,
    properties: {
      state: { type: 'string', enum: [...STATES] },
      limit: { type: 'integer', minimum: 1, maximum: 10_000 },
    },
  },
} as const;

/**
 * Delivery queue routes (issue #4, operator control):
 *
 * - `GET    /v1/queue?state=&limit=`   jobs, oldest message first
 * - `GET    /v1/queue/:id`             one job with each recipient's progress (from the spool)
 * - `POST   /v1/queue/:id/retry`       attempt now (a delayed or parked job); 409 while one runs
 * - `DELETE /v1/queue/:id`             give up: pending recipients fail, the sender gets a DSN
 */
export function registerQueueRoutes(
  app: FastifyInstance,
  queue: QueueAdmin,
  actorOf: (request: FastifyRequest) => Actor,
): void {
  app.get<{ Querystring: { state?: (typeof STATES)[number]; limit?: number } }>(
    '/v1/queue',
    { schema: listSchema },
    async (request) => {
      const { state, limit } = request.query;
      const items = await queue.list({ ...(state ? { states: [state] } : {}), ...(limit ? { limit } : {}) });
      return { items };
    },
  );
  app.get<{ Params: { id: string } }>('/v1/queue/:id', { schema: { params: idParams } }, async (request) =>
    queue.show(request.params.id),
  );
  app.post<{ Params: { id: string } }>(
    '/v1/queue/:id/retry',
    { schema: { params: idParams } },
    async (request) => queue.retry(request.params.id, actorOf(request)),
  );
  app.delete<{ Params: { id: string } }>('/v1/queue/:id', { schema: { params: idParams } }, async (request) =>
    queue.remove(request.params.id, actorOf(request)),
  );
}
