import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { expect, inject, vi } from 'vitest';
import { systemClock } from '../../src/shared/index.js';
import { ConfigSchema } from '../../src/config/index.js';
import {
  createLogger,
  createMetrics,
  FileAuditJournal,
  type Metrics,
} from '../../src/observability/index.js';
import {
  FhirPublisher,
  PublicationService,
  type FhirSettings,
  type PublicationSettings,
  type PublicationState,
} from '../../src/publication/index.js';
import { BalRegistry, type Actor } from '../../src/registry/index.js';
import { storeProvisioner, TEST_DOMAINS } from './admin-harness.js';
import { devTrust } from './auth-tls.js';
import { startFhirServer, type FhirTestServer } from './fhir-server.js';
import { journalEvents } from './journal.js';

export const ACTOR: Actor = { kind: 'system', id: 'publication-test' };

/** Fast retries so a test sees the whole backoff in a fraction of a second. */
export const TEST_SETTINGS: PublicationSettings = {
  concurrency: 2,
  maxCallsPerSecond: 1000,
  retryInitialSeconds: 0.05,
  retryMaxSeconds: 0.2,
  maxAttempts: 3,
  timeoutSeconds: 5,
};

export interface PublicationHarness {
  readonly prefix: string;
  readonly dataDir: string;
  readonly fhir: FhirTestServer;
  readonly registry: BalRegistry;
  readonly publication: PublicationService;
  readonly metrics: Metrics;
  readonly redis: Redis;
  journal(): Array<Record<string, unknown>>;
  /** Waits until no change is owed to the directory for the mailbox, and returns its state. */
  settled(address: string, timeoutMs?: number): Promise<PublicationState>;
  close(): Promise<void>;
}

/**
 * A real BalRegistry (run's Redis, unique prefix, real Dovecot provisioning) whose observer is a
 * real PublicationService (BullMQ on the same Redis) publishing through the real FhirPublisher to a
 * local FHIR server over mutual TLS with the development PKI. Metrics wired as src/app/ wires them.
 */
export async function startPublicationHarness(
  options: { settings?: Partial<PublicationSettings>; fhir?: FhirTestServer } = {},
): Promise<PublicationHarness> {
  const pkiDir = inject('pkiDir');
  const prefix = `test:${randomUUID()}:`;
  const dataDir = path.join(inject('scratchDir'), `publication-${randomUUID().slice(0, 8)}`);
  mkdirSync(dataDir, { recursive: true });
  const fhir = options.fhir ?? (await startFhirServer(pkiDir));
  const redis = new Redis(inject('redisUrl'));
  const journal = new FileAuditJournal({ dir: path.join(dataDir, 'journal'), clock: systemClock });
  const logger = createLogger({ level: 'silent' });
  const metrics = createMetrics();
  const trust = devTrust(pkiDir);
  const defaults = ConfigSchema.parse({}).publication.fhir;
  const settings: FhirSettings = { ...defaults, baseUrl: fhir.baseUrl };
  // The service reads the registry, the registry tells the service: the registry is built second.
  const built: { registry?: BalRegistry } = {};
  const bals = {
    get: (a: string) => built.registry!.get(a),
    list: (q?: Parameters<BalRegistry['list']>[0]) => built.registry!.list(q),
  };
  const publication = new PublicationService({
    redis,
    connect: () => new Redis(inject('redisUrl'), { maxRetriesPerRequest: null }),
    prefix,
    bals,
    publisher: new FhirPublisher({
      settings,
      tls: () => trust,
      tlsProfile: { minVersion: 'TLSv1.2', allowCbc: false },
      timeoutMs: 5000,
    }),
    clock: systemClock,
    journal,
    logger,
    settings: { ...TEST_SETTINGS, ...options.settings },
    observer: { call: (operation, outcome) => metrics.publicationCalls.inc({ operation, outcome }) },
  });
  const registry = new BalRegistry({
    redis,
    prefix,
    domains: TEST_DOMAINS,
    clock: systemClock,
    journal,
    provisioner: storeProvisioner(),
    observer: publication,
  });
  built.registry = registry;
  metrics.sources.publicationStates = () => publication.countByState();
  metrics.sources.publicationDrift = async () => {
    const r = await publication.lastDrift();
    return r
      ? { publishedMissing: r.publishedMissing.count, unpublishedPresent: r.unpublishedPresent.count }
      : undefined;
  };
  await publication.start();
  return {
    prefix,
    dataDir,
    fhir,
    registry,
    publication,
    metrics,
    redis,
    journal: () => journalEvents(dataDir),
    settled: async (address, timeoutMs = 30_000) => {
      let last: PublicationState | null = null;
      await vi.waitFor(
        async () => {
          last = await publication.state(address);
          expect(last?.changePending).toBe(false);
          expect(last?.state).not.toBe('pending');
        },
        { timeout: timeoutMs, interval: 20 },
      );
      return last as unknown as PublicationState;
    },
    close: async () => {
      await publication.stop();
      journal.close();
      if (!options.fhir) await fhir.close();
      redis.disconnect();
    },
  };
}
