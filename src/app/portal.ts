import type { AddressInfo } from 'node:net';
import { publicClientAccess, type Config } from '../config/index.js';
import type { DirectoryMirrors } from '../directory/index.js';
import type { LifecycleActivity } from '../lifecycle/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import { type Portal, buildPortal } from '../portal/index.js';
import type { PublicationService } from '../publication/index.js';
import type { BalRegistry } from '../registry/index.js';
import type { Clock } from '../shared/index.js';
import type { Backends } from './backends.js';
import type { GatewayAddresses } from './gateway-addresses.js';
import type { TrustPart } from './trust.js';

export interface PortalPartDeps {
  readonly config: Config;
  readonly backends: Backends;
  readonly trust: TrustPart;
  readonly registry: BalRegistry;
  readonly publication: PublicationService | undefined;
  readonly mirrors: DirectoryMirrors;
  readonly activity: LifecycleActivity;
  /** Where IMAP and submission listen, for the settings shown to mail software. */
  readonly listening: () => GatewayAddresses;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
}

/** The professionals' portal (issue #13), on its own HTTPS listener. */
export function buildPortalPart(d: PortalPartDeps): {
  readonly server: Portal;
  listen(): Promise<AddressInfo | undefined>;
  stop(): Promise<void>;
} {
  const { config, registry, publication } = d;
  const server = buildPortal({
    config,
    redis: d.backends.redis,
    registry,
    // A use of the mailbox, as a login would be: last activity, then the lifecycle's return-on-use.
    keep: async (address, at) => {
      await registry.recordActivity(address, 'portal', at);
      return d.activity.onActivity(address, 'portal', at);
    },
    ...(publication
      ? {
          publicationOf: async (address: string) => {
            const [s] = await publication.statesOf([address]);
            return s ? { state: s.state, ...(s.reason ? { reason: s.reason } : {}) } : undefined;
          },
        }
      : {}),
    nationalAddresses: async (nationalId) =>
      (await d.mirrors.directory.addressesOf(nationalId))?.map((e) => ({
        address: e.address,
        type: e.type,
        ...(e.organisation ? { organisation: e.organisation } : {}),
      })),
    tls: () => ({ cert: d.trust.current().cert, key: d.trust.current().key }),
    clientEndpoints: () => {
      const a = d.listening();
      // The same names and ports as `mssgw dns records` publishes (RFC 6186 SRV).
      const { imap, submission } = publicClientAccess(config, {
        ...(a.imap ? { imap: a.imap.port } : {}),
        ...(a.imapTls ? { imapTls: a.imapTls.port } : {}),
        ...(a.submission ? { submission: a.submission.port } : {}),
        ...(a.submissionTls ? { submissionTls: a.submissionTls.port } : {}),
      });
      return {
        host: imap.host,
        imapTls: imap.tlsPort,
        imapStarttls: imap.starttlsPort,
        submissionTls: submission.tlsPort,
        submissionStarttls: submission.starttlsPort,
      };
    },
    journal: d.journal,
    logger: d.logger.child({ component: 'portal' }),
    clock: d.clock,
  });
  d.trust.onReload(() => server.reloadTrust());
  return {
    server,
    listen: async () => {
      await server.start();
      return server.address();
    },
    stop: () => server.stop(),
  };
}
