import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import type { DirectoryMirrors } from '../directory/index.js';
import type { AuditJournal } from '../observability/index.js';
import type { PublicationService } from '../publication/index.js';
import { balChangeIndicators } from '../lifecycle/index.js';
import type { Logger } from '../observability/index.js';
import { BalRegistry } from '../registry/index.js';
import type { Backends } from './backends.js';
import { indicatorRecorder } from './lifecycle.js';
import { storeProvisioner } from './store-adapters.js';

export interface RegistryPartDeps {
  readonly config: Config;
  readonly backends: Backends;
  /** Told of every change of a mailbox, to publish it. */
  readonly publication: PublicationService | undefined;
  /** The national directory, to check a new mailbox's owner. */
  readonly mirrors: DirectoryMirrors;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
}

/**
 * The mailboxes (BAL), their rights and activity; a new mailbox is created in the store too. Every
 * change is told to publication, then counted in the indicators (created/suspended/deleted).
 */
export function buildRegistry(d: RegistryPartDeps): BalRegistry {
  const { config, backends, publication, mirrors } = d;
  return new BalRegistry({
    redis: backends.redis,
    prefix: config.redis.prefix,
    domains: config.domains,
    clock: d.clock,
    journal: d.journal,
    provisioner: storeProvisioner(backends.store),
    observer: balChangeIndicators({
      indicators: indicatorRecorder(config, backends.redis),
      clock: d.clock,
      logger: d.logger,
      ...(publication ? { next: publication } : {}),
    }),
    nationalEntry: (address) => mirrors.directory.entryOf(address),
  });
}
