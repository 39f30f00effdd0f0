import type { AddressInfo } from 'node:net';
import { buildAdminApi } from '../admin/index.js';
import type { GatewayAuthenticator } from '../auth/index.js';
import { type Config, readSecretFile } from '../config/index.js';
import type { QueueAdministration } from '../delivery/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { RunSummary } from '../lifecycle/index.js';
import type { PublicationService } from '../publication/index.js';
import type { BalRegistry } from '../registry/index.js';
import { explainListen } from '../shared/index.js';

export interface AdminPartDeps {
  readonly config: Config;
  readonly registry: BalRegistry;
  readonly publication: PublicationService | undefined;
  readonly queue: QueueAdministration;
  readonly authenticator: GatewayAuthenticator;
  /** The gateway's reload (SIGHUP), and the certificate then in service. */
  readonly reload: () => Promise<{ readonly certificateNotAfter: string }>;
  /** The daily lifecycle run at another instant (development walk-through, issue #14 item 9). */
  readonly lifecycleRunAt: (at: Date) => Promise<RunSummary>;
  readonly journal: AuditJournal;
  readonly logger: Logger;
}

/** The operator's HTTP API (mailboxes, rights, secrets, queue, publication, reload). */
export function buildAdmin(d: AdminPartDeps): { listen(): Promise<AddressInfo>; stop(): Promise<void> } {
  const { config } = d;
  const token = config.admin.tokenFile ? readSecretFile(config.admin.tokenFile) : undefined;
  const admin = buildAdminApi({
    reload: d.reload,
    lifecycleRun: { development: config.mode === 'development', runAt: d.lifecycleRunAt },
    queue: d.queue,
    registry: d.registry,
    ...(d.publication ? { publication: d.publication } : {}),
    logger: d.logger,
    ...(token ? { token } : {}),
    secrets: {
      store: d.authenticator.secrets,
      passwordTypes: config.auth.passwordTypes,
      journal: d.journal,
    },
  });
  const { host, port } = config.admin;
  return {
    listen: async () => {
      await admin.listen({ port, host }).catch(explainListen('admin API', 'admin.port', host, port));
      return admin.server.address() as AddressInfo;
    },
    stop: () => admin.close(),
  };
}
