import type { FastifyInstance } from 'fastify';
import { GatewayError } from '../errors/index.js';
import type { DriftReport, PublicationState } from '../publication/index.js';

/** What the admin API reads of the publication service (PublicationService fits). */
export interface AdminPublicationDeps {
  state(address: string): Promise<PublicationState | null>;
  lastDrift(): Promise<DriftReport | null>;
}

/**
 * `GET /v1/directory/drift`: the last comparison of our publication state with the national
 * extraction (publication/drift.ts). Without a publication service the route answers
 * PUBLICATION_DISABLED, so the CLI can say what to enable.
 */
export function registerPublicationRoutes(
  app: FastifyInstance,
  publication: AdminPublicationDeps | undefined,
): void {
  app.get('/v1/directory/drift', async () => {
    if (!publication) {
      throw new GatewayError(
        'PUBLICATION_DISABLED',
        'publication to the national directory is not enabled on this gateway (publication.enabled), so there is no drift report',
      );
    }
    const report = await publication.lastDrift();
    if (!report) {
      throw new GatewayError(
        'DRIFT_REPORT_MISSING',
        'no drift report yet: one is made after each refresh of the national BAL extraction',
      );
    }
    return report;
  });
}
