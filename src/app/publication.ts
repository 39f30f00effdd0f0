import type { Config } from '../config/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import path from 'node:path';
import {
  type BalSource,
  type DevDirectory,
  FhirPublisher,
  PublicationService,
  startDevDirectory,
} from '../publication/index.js';
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
  /** The development stand-in's base URL, which replaces publication.fhir.baseUrl. */
  readonly baseUrl?: string;
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
      settings: { ...fhir, baseUrl: d.baseUrl ?? fhir.baseUrl ?? '' },
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

/**
 * The development stand-in of the national directory (`publication.devDirectory`, refused in
 * production by the configuration): started before publication, which then publishes to it.
 * Its certificate is ours and it trusts our authorities, so the publisher's mutual TLS is the real one.
 */
export async function startDevDirectoryPart(
  d: Pick<PublicationPartDeps, 'config' | 'trust' | 'logger'>,
): Promise<DevDirectory | undefined> {
  const { config } = d;
  const dev = config.publication.devDirectory;
  if (!dev.enabled) return undefined;
  const { fhir } = config.publication;
  return startDevDirectory({
    host: dev.host,
    port: dev.port,
    tls: () => {
      const t = d.trust.current();
      return { cert: t.cert, key: t.key, ca: t.ca };
    },
    personResource: fhir.personResource,
    personIdentifierSystem: fhir.personIdentifierSystem,
    structureResource: fhir.structureResource,
    structureIdentifierSystem: fhir.structureIdentifierSystem,
    file: path.join(config.dataDir, 'dev-directory', 'resources.json'),
    logger: d.logger.child({ component: 'dev-directory' }),
  });
}
