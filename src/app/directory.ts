import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { DirectoryMirrors, type WhitelistHolder } from '../directory/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import { type PublicationService, checkDriftOnce } from '../publication/index.js';
import type { Backends } from './backends.js';
import type { TrustPart } from './trust.js';

export interface DirectoryPartDeps {
  readonly config: Config;
  readonly backends: Backends;
  readonly trust: TrustPart;
  readonly whitelist: WhitelistHolder;
  /** Checked against each new extraction (drift), when publication is enabled. */
  readonly publication: PublicationService | undefined;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/**
 * The mirrors of the whitelist, the national extraction and the CRLs. A changed CRL goes into every
 * TLS context at once; a new extraction is compared with what we publish.
 */
export function buildDirectory(d: DirectoryPartDeps): DirectoryMirrors {
  const { config, backends, publication } = d;
  const logger = d.logger.child({ component: 'directory' });
  const mirrors: DirectoryMirrors = new DirectoryMirrors({
    config,
    redis: backends.redis,
    connect: (name) => backends.connect(name),
    trust: () => d.trust.current(),
    whitelist: d.whitelist,
    clock: d.clock,
    logger,
    journal: d.journal,
    metrics: d.metrics,
    onCrlChange: () => d.trust.reload(mirrors.crlFiles()),
    onSwitch: (mirror, version) => {
      if (mirror !== 'extraction' || !publication) return;
      void checkDriftOnce(
        {
          publication,
          redis: backends.redis,
          prefix: config.redis.prefix,
          extraction: {
            has: async (addresses) => {
              const { entries } = await mirrors.directory.lookup(addresses);
              return addresses.map((a) => entries.has(a));
            },
          },
          logger: d.logger,
        },
        version,
      );
    },
  });
  return mirrors;
}

/**
 * Puts the stored copies in service and follows changes; start() rewrote the mirrored CRL files,
 * so they go into service before any listener opens.
 */
export async function startDirectory(mirrors: DirectoryMirrors, trust: TrustPart): Promise<void> {
  await mirrors.start();
  trust.reload(mirrors.crlFiles());
}
