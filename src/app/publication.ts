import type { Config } from '../config/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import { type BalSource, FhirPublisher, PublicationService } from '../publication/index.js';
import type { Clock } from '../shared/index.js';
import type { Backends } from './backends.js';
import type { TrustPart } from './trust.js';

export interface PublicationPartDeps {
  readonly config: Config;
  readonly backends: Backends;
  /** The registry's mailboxes; read only once the service works (after start). */
  readonly bals: BalSource;
  readonly trust: TrustPart;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * The publisher of our mailboxes in the national directory (FHIR PATCH over mTLS), when
 * `publication.enabled`; undefined otherwise.
 */
export function buildPublication(d: PublicationPartDeps): PublicationService | undefined {
  const { config } = d;
  const pub = config.publication;
  if (!pub.enabled) return undefined;
  const { fhir, enabled: _enabled, ...settings } = pub;
  return new PublicationService({
    redis: d.backends.redis,
    connect: (n) => d.backends.connect(n),
    prefix: config.redis.prefix,
    bals: d.bals,
    publisher: new FhirPublisher({
      settings: { ...fhir, baseUrl: fhir.baseUrl ?? '' },
      tls: () => d.trust.current(),
      tlsProfile: { minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc },
      timeoutMs: pub.timeoutSeconds * 1000,
    }),
    clock: d.clock,
    journal: d.journal,
    logger: d.logger.child({ component: 'publication' }),
    settings,
    observer: { call: (operation, outcome) => d.metrics.publicationCalls.inc({ operation, outcome }) },
  });
}

/** Starts the worker, then catches up in the background with what changed while we were down. */
export async function startPublication(publication: PublicationService, logger: Logger): Promise<void> {
  await publication.start();
  void publication
    .catchUp()
    .catch((err: unknown) =>
      logger.warn(
        { event: 'publication.catch_up_failed', err: (err as Error).message },
        'publication catch-up failed',
      ),
    );
}
