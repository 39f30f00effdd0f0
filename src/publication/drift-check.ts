import type { Redis } from 'ioredis';
import type { Logger } from '../observability/index.js';
import type { ExtractionView } from './drift.js';
import type { PublicationService } from './publication-service.js';

export interface DriftCheckDeps {
  readonly publication: PublicationService;
  readonly redis: Redis;
  readonly prefix: string;
  /** The national directory as of the new extraction: which of these addresses it lists. */
  readonly extraction: ExtractionView;
  readonly logger: Logger;
}

/** A day: every process of the deployment sees the switch well within it. */
const CLAIM_SECONDS = 86_400;

/**
 * Compares what we think is published with a new extraction (issue #5 drift), in one process per
 * extraction version: every process sees the switch, the first to claim the version in Redis runs
 * the comparison. A failure is logged; the next extraction compares again.
 */
export async function checkDriftOnce(d: DriftCheckDeps, version: number): Promise<void> {
  try {
    const claim = `${d.prefix}drift:checked:${version}`;
    if ((await d.redis.set(claim, String(process.pid), 'EX', CLAIM_SECONDS, 'NX')) !== 'OK') return;
    await d.publication.reconcile(d.extraction);
  } catch (err) {
    d.logger.warn({ event: 'publication.drift_failed', err: (err as Error).message }, 'drift check failed');
  }
}
