import path from 'node:path';
import type { GatewayAuthenticator, SessionWatch } from '../auth/index.js';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { type Spool, queueAdministration } from '../delivery/index.js';
import type { DirectoryMirrors, WhitelistHolder } from '../directory/index.js';
import type { ImapFrontEnd } from '../imap/index.js';
import type { LifecycleActivity, LifecycleEvents, RunSummary } from '../lifecycle/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import type { Portal } from '../portal/index.js';
import type { PublicationService } from '../publication/index.js';
import type { BalRegistry } from '../registry/index.js';
import type { MxServer, SubmissionServer } from '../smtp/index.js';
import type { StoreHealthMonitor } from '../store/index.js';
import { buildAdmin } from './admin.js';
import type { Backends } from './backends.js';
import type { DeliveryPart } from './delivery.js';
import type { GatewayAddresses } from './gateway-addresses.js';
import { buildImap, buildMx, buildSubmission } from './listeners.js';
import { buildObservability } from './observability.js';
import { buildPortalPart } from './portal.js';
import { withQueueHistory } from './queue-history.js';
import type { StopOrder } from './stop-order.js';
import type { TrustPart } from './trust.js';

export interface OpenListenersDeps {
  readonly config: Config;
  readonly backends: Backends;
  readonly trust: TrustPart;
  readonly whitelist: WhitelistHolder;
  readonly registry: BalRegistry;
  readonly publication: PublicationService | undefined;
  readonly spool: Spool;
  readonly delivery: DeliveryPart;
  readonly lifecycle: LifecycleEvents;
  readonly activity: LifecycleActivity;
  /** The daily lifecycle run at another instant, for the admin API (development only). */
  readonly lifecycleRunAt: (at: Date) => Promise<RunSummary>;
  readonly mirrors: DirectoryMirrors;
  readonly authenticator: GatewayAuthenticator;
  /** Open IMAP and submission sessions, cut when their right goes (issue #11 item 5). */
  readonly sessions: SessionWatch;
  readonly health: StoreHealthMonitor;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

export interface OpenListeners {
  readonly mx: MxServer | undefined;
  readonly submission: SubmissionServer | undefined;
  readonly imap: ImapFrontEnd | undefined;
  readonly portal: Portal | undefined;
  readonly addresses: GatewayAddresses;
}

/**
 * Every enabled listener, in this order: MX, submission, IMAP, then the metrics and admin HTTP
 * servers (readiness reports the listeners opened before it). Each is registered with the stop order
 * before it listens, so that one failing to listen closes those already open.
 */
export async function openListeners(
  d: OpenListenersDeps,
  stops: StopOrder,
  reload: () => Promise<{ readonly certificateNotAfter: string }>,
): Promise<OpenListeners> {
  const { config, delivery } = d;
  const mx = config.smtp.mx.enabled
    ? stops.add('mx', buildMx({ ...d, onAccepted: (env) => void delivery.queue.enqueue(env) }))
    : undefined;
  const mxAddress = await mx?.listen();
  const submission = config.smtp.submission.enabled
    ? stops.add(
        'submission',
        buildSubmission({
          ...d,
          onAccepted: (env) => {
            void delivery.queue.enqueue(env);
            d.lifecycle.onSubmitted(env);
          },
        }),
      )
    : undefined;
  const submissionAddresses = await submission?.listen();
  const imap = config.imap.enabled ? stops.add('imap', buildImap(d)) : undefined;
  const imapAddresses = await imap?.listen();
  const http = config.metrics.enabled
    ? stops.add(
        'http',
        buildObservability({
          config,
          metrics: d.metrics,
          readiness: {
            redis: d.backends.redis,
            storeUp: () => d.health.up,
            smtp: { enabled: mx !== undefined, listening: () => mx?.server.server.server.listening === true },
            submission: {
              enabled: submission !== undefined,
              listening: () => submission?.server.starttls.server.listening === true,
            },
            imap: { enabled: imap !== undefined, listening: () => imapAddresses !== undefined },
          },
        }),
      )
    : undefined;
  const metricsAddress = await http?.listen();
  const admin = config.admin.enabled
    ? stops.add(
        'admin',
        buildAdmin({
          ...d,
          queue: withQueueHistory(
            queueAdministration({ queue: delivery.queue, worker: delivery.worker, journal: d.journal }),
            path.join(config.dataDir, 'journal'),
          ),
          reload,
        }),
      )
    : undefined;
  const adminAddress = await admin?.listen();
  const clientAddresses = {
    submission: submissionAddresses?.starttls,
    submissionTls: submissionAddresses?.implicit,
    imap: imapAddresses?.starttls,
    imapTls: imapAddresses?.implicit,
  };
  const portal = config.portal.enabled
    ? stops.add('portal', buildPortalPart({ ...d, listening: () => clientAddresses }))
    : undefined;
  const portalAddress = await portal?.listen();
  return {
    mx: mx?.server,
    submission: submission?.server,
    imap: imap?.server,
    portal: portal?.server,
    addresses: {
      mx: mxAddress,
      ...clientAddresses,
      metrics: metricsAddress,
      admin: adminAddress,
      portal: portalAddress,
    },
  };
}
