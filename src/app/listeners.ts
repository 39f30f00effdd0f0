import type { AddressInfo } from 'node:net';
import { type Principal, decodeExternal, decodeOauthbearer } from '../auth/index.js';
import type { GatewayAuthenticator, SessionWatch } from '../auth/index.js';
import { type Clock, explainListen, listenError } from '../shared/index.js';
import type { Config } from '../config/index.js';
import type { Spool, SpoolEnvelope } from '../delivery/index.js';
import type { DirectoryMirrors, WhitelistHolder } from '../directory/index.js';
import { ImapFrontEnd, StoreConnector } from '../imap/index.js';
import { isGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import { imapObserver } from '../imap/index.js';
import { type BalRegistry, ownedAddresses } from '../registry/index.js';
import { MxServer, SubmissionServer } from '../smtp/index.js';
import type { Backends } from './backends.js';
import type { TrustPart } from './trust.js';

/** A listener built, not yet listening: stop() closes it whether or not it listens. */
export interface ListenerPart<S, A> {
  readonly server: S;
  listen(): Promise<A>;
  stop(): Promise<void>;
}

/** STARTTLS and implicit TLS ports of one service. */
export interface TwoPorts {
  readonly starttls: AddressInfo;
  readonly implicit: AddressInfo;
}

interface ListenerDeps {
  readonly config: Config;
  readonly trust: TrustPart;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** SMTP from other operators (port 25): mail for our mailboxes, spooled before 250. */
export function buildMx(
  d: ListenerDeps & {
    readonly whitelist: WhitelistHolder;
    readonly registry: BalRegistry;
    readonly spool: Spool;
    readonly onAccepted: (envelope: SpoolEnvelope) => void;
  },
): ListenerPart<MxServer, AddressInfo> {
  const { config } = d;
  const server = new MxServer({
    config,
    trust: () => d.trust.current(),
    whitelist: d.whitelist,
    mailboxes: d.registry,
    spool: d.spool,
    onAccepted: d.onAccepted,
    clock: d.clock,
    logger: d.logger.child({ component: 'smtp' }),
    journal: d.journal,
    metrics: d.metrics,
  });
  d.trust.onReload(() => server.reloadTrust());
  const { host, port } = config.smtp.mx;
  return {
    server,
    listen: () => server.listen(port, host).catch(explainListen('MX (SMTP)', 'smtp.mx.port', host, port)),
    stop: () => server.close(),
  };
}

/** SMTP submission of our users (587 STARTTLS, 465 implicit TLS), authenticated. */
export function buildSubmission(
  d: ListenerDeps & {
    readonly whitelist: WhitelistHolder;
    readonly registry: BalRegistry;
    readonly authenticator: GatewayAuthenticator;
    readonly sessions: SessionWatch;
    readonly mirrors: DirectoryMirrors;
    readonly spool: Spool;
    readonly onAccepted: (envelope: SpoolEnvelope) => void;
  },
): ListenerPart<SubmissionServer, TwoPorts> {
  const { config, registry } = d;
  const { host, port, tlsPort } = config.smtp.submission;
  const server = new SubmissionServer({
    config,
    trust: () => d.trust.current(),
    whitelist: d.whitelist,
    mailboxes: registry,
    // Where a delegate's `Sender:` may point: her own addresses, here and in the national extraction.
    ownMailboxes: (p: Principal) =>
      p.kind === 'person'
        ? ownedAddresses(registry, p.nationalId, {
            addressesOf: (id) => d.mirrors.directory.addressesOf(id),
            ourDomains: config.domains,
          })
        : Promise.resolve([]),
    authenticator: d.authenticator,
    sasl: { oauthBearer: decodeOauthbearer, external: decodeExternal },
    spool: d.spool,
    onAccepted: d.onAccepted,
    clock: d.clock,
    logger: d.logger.child({ component: 'submission' }),
    journal: d.journal,
    metrics: d.metrics,
    sessions: d.sessions,
  });
  d.trust.onReload(() => server.reloadTrust());
  return {
    server,
    listen: () =>
      server.listen(host, port, tlsPort).catch((err: NodeJS.ErrnoException & { port?: number }) => {
        // Node's listen error carries the port it tried: say which of the two listeners failed.
        const implicit = err.port === tlsPort && tlsPort !== port;
        throw implicit
          ? listenError('submission (implicit TLS)', 'smtp.submission.tlsPort', host, tlsPort, err)
          : listenError('submission (STARTTLS)', 'smtp.submission.port', host, port, err);
      }),
    stop: () => server.close(),
  };
}

/** The IMAP front end: authenticates, then pipes the session to the store as the master user. */
export function buildImap(
  d: ListenerDeps & {
    readonly backends: Backends;
    readonly authenticator: GatewayAuthenticator;
    readonly sessions: SessionWatch;
  },
): ListenerPart<ImapFrontEnd, TwoPorts> {
  const { config, backends } = d;
  // The store's connect and greeting are made ahead of logins (store-login.ts).
  const connector = new StoreConnector(backends.store.imap, backends.store.master);
  const server = new ImapFrontEnd({
    config: config.imap,
    tls: () => ({ ...d.trust.current(), minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc }),
    authenticator: d.authenticator,
    store: { imap: backends.store.imap, master: backends.store.master, connector },
    logger: d.logger.child({ component: 'imap' }),
    journal: d.journal,
    clock: d.clock,
    observer: imapObserver(d.metrics.registry, d.metrics),
    sessions: d.sessions,
    onRefusalReply: (outcome) =>
      d.metrics.connectionRefusalReplies.inc({ listener: 'imap-implicit', outcome }),
  });
  d.trust.onReload(() => server.reloadTrust());
  return {
    server,
    // listen() names imap.port / imap.tlsPort in its error; told here in the words of every listener.
    listen: () =>
      server.listen().catch((err: unknown) => {
        const key = isGatewayError(err) ? err.details['key'] : undefined;
        const cause = err instanceof Error ? err.cause : undefined;
        if ((key !== 'imap.port' && key !== 'imap.tlsPort') || !(cause instanceof Error)) throw err;
        const { host } = config.imap;
        const implicit = key === 'imap.tlsPort';
        throw listenError(
          implicit ? 'IMAP (implicit TLS)' : 'IMAP (STARTTLS)',
          key,
          host,
          implicit ? config.imap.tlsPort : config.imap.port,
          cause,
        );
      }),
    stop: () => server.close().finally(() => connector.close()),
  };
}
