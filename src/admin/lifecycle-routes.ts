import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors/index.js';
import type { RunSummary } from '../lifecycle/index.js';

/** What the lifecycle route needs; the composition root implements it over the daily job. */
export interface LifecycleRunAdmin {
  /** Only a development gateway runs the lifecycle at another instant. */
  readonly development: boolean;
  runAt(at: Date): Promise<RunSummary>;
}

const runSchema = {
  body: {
    type: 'object',
    additionalProperties: false,
    required: ['at'],
    properties: { at: { type: 'string', format: 'date-time' } },
  },
} as const;

/**
 * `POST /v1/lifecycle/runs {"at": "<ISO instant>"}`: the daily lifecycle run now, planned as if it
 * were `at` (issue #14 item 9), so that a development gateway shows the day-30 warning and the
 * day-45 unpublication at once. Refused in production mode: there the run follows the real clock,
 * and an instant in the future would warn and unpublish mailboxes that are in use.
 */
export function registerLifecycleRoutes(app: FastifyInstance, lifecycle: LifecycleRunAdmin): void {
  app.post<{ Body: { at: string } }>('/v1/lifecycle/runs', { schema: runSchema }, async (request) => {
    if (!lifecycle.development) {
      throw new GatewayError(
        'LIFECYCLE_RUN_DEVELOPMENT_ONLY',
        'mode is production: the lifecycle runs daily at the real time only (lifecycle.runAt); use `mssgw lifecycle preview --at` to see what a later day would do',
      );
    }
    return lifecycle.runAt(new Date(request.body.at));
  });
}
