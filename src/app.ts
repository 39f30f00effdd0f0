import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildAdminApi } from './admin/index.js';
import { type Backends, startBackends } from './app-backends.js';
import { type Clock, systemClock } from './clock.js';
import { type Config, readSecretFile } from './config/index.js';
import {
  DeliveryQueue,
  DestinationWorker,
  DsnNotifier,
  type GeneratedRoute,
  Spool,
  localDestination,
  relayDestination,
} from './delivery/index.js';
import { FhirPublisher, PublicationService } from './publication/index.js';
import { RelayTransport, systemMxLookup } from './relay/index.js';
import { routeSubmission } from './routing/index.js';
import { GatewayError } from './errors/index.js';
import { DirectoryMirrors, WhitelistHolder, loadWhitelistFile } from './directory/index.js';
import {
  type AuditJournal,
  FileAuditJournal,
  type Logger,
  type Metrics,
  createMetrics,
  createObservabilityServer,
  listenHttp,
} from './observability/index.js';
import { type TrustMaterial, assertProductionTrust, ensureDevPki, loadTrustMaterial } from './pki/index.js';
import { BalRegistry } from './registry/index.js';
import { MxServer, SubmissionServer } from './smtp/index.js';
import { ImapFrontEnd } from './imap/index.js';
import { imapObserver } from './observability/imap-metrics.js';
import {
  GatewayAuthenticator,
  JwtTokenVerifier,
  decodeExternal,
  decodeOauthbearer,
  effectiveIssuers,
  ensureDevIssuer,
  type Principal,
} from './auth/index.js';
import { StoreHealthMonitor, lmtpTransport, storeProvisioner, storePurger } from './store-wiring.js';
import { LifecycleWiring } from './lifecycle-wiring.js';

export interface GatewayAddresses {
  mx?: AddressInfo;
  submission?: AddressInfo;
  submissionTls?: AddressInfo;
  imap?: AddressInfo;
  imapTls?: AddressInfo;
  metrics?: AddressInfo;
  admin?: AddressInfo;
}

/** Turns a listen failure into a message naming the setting to change. */
function explainListen(key: string, host: string, port: number) {
  return (err: NodeJS.ErrnoException): never => {
    const why =
      err.code === 'EADDRINUSE'
        ? 'is already in use'
        : err.code === 'EACCES'
          ? 'needs privileges this process lacks'
          : err.code === 'EADDRNOTAVAIL'
            ? 'names an address this machine does not have'
            : `cannot be listened on (${err.code ?? err.message})`;
    throw new GatewayError(
      'CONFIG_INVALID',
      `${host}:${port} (${key}.host/${key}.port) ${why}`,
      { key },
      { cause: err },
    );
  };
}

/** `{ mx: '127.0.0.1:2525', ... }` for logs and the journal. */
export function describeAddresses(addresses: GatewayAddresses): Record<string, string> {
  const entries = Object.entries(addresses) as Array<[string, AddressInfo | undefined]>;
  return Object.fromEntries(entries.flatMap(([k, a]) => (a ? [[k, `${a.address}:${a.port}`]] : [])));
}

export interface GatewayOptions {
  readonly logger: Logger;
  readonly clock?: Clock;
}

/**
 * The composition root (STYLE.md convention 4): builds every service from explicit dependencies,
 * starts them in dependency order and stops them in reverse.
 */
export class Gateway {
  readonly config: Config;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly metrics: Metrics;
  readonly addresses: GatewayAddresses = {};
  journal!: AuditJournal;
  backends!: Backends;
  registry!: BalRegistry;
  spool!: Spool;
  delivery!: DeliveryQueue;
  worker!: DestinationWorker;
  relay!: RelayTransport;
  whitelist!: WhitelistHolder;
  mirrors!: DirectoryMirrors;
  lifecycle!: LifecycleWiring;
  /** Publication in the national directory (publication.enabled). */
  publication: PublicationService | undefined;
  mx: MxServer | undefined;
  submission: SubmissionServer | undefined;
  imap: ImapFrontEnd | undefined;
  authenticator!: GatewayAuthenticator;
  #trust!: TrustMaterial;
  #admin: FastifyInstance | undefined;
  #http: ReturnType<typeof createObservabilityServer> | undefined;
  #health: StoreHealthMonitor | undefined;
  #stopping: Promise<void> | undefined;

  private constructor(config: Config, options: GatewayOptions) {
    this.config = config;
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.metrics = createMetrics();
  }

  static async start(config: Config, options: GatewayOptions): Promise<Gateway> {
    const gw = new Gateway(config, options);
    try {
      await gw.#start();
    } catch (err) {
      await gw.stop();
      throw err;
    }
    return gw;
  }

  get trust(): TrustMaterial {
    return this.#trust;
  }

  async #start(): Promise<void> {
    const { config, logger } = this;
    mkdirSync(config.dataDir, { recursive: true, mode: 0o750 });
    if (config.mode === 'development') {
      const { generated } = await ensureDevPki(config.pkiDir);
      if (generated)
        logger.warn(
          { event: 'pki.dev.generated', dir: config.pkiDir },
          'development PKI generated (never use it in production)',
        );
    }
    this.#trust = loadTrustMaterial(config.tls).material;
    if (config.mode === 'production') assertProductionTrust(this.#trust);
    this.whitelist = new WhitelistHolder(await loadWhitelistFile(config.whitelistFile, this.clock));
    this.journal = new FileAuditJournal({ dir: `${config.dataDir}/journal`, clock: this.clock });
    this.backends = await startBackends(config, logger);
    const { store, redis } = this.backends;
    this.publication = this.#buildPublication();
    this.registry = new BalRegistry({
      redis,
      prefix: config.redis.prefix,
      domains: config.domains,
      clock: this.clock,
      journal: this.journal,
      provisioner: storeProvisioner(store),
      ...(this.publication ? { observer: this.publication } : {}),
      nationalEntry: (address) => this.mirrors.directory.entryOf(address),
    });
    await this.publication?.start();
    void this.publication
      ?.catchUp()
      .catch((err: unknown) =>
        logger.warn(
          { event: 'publication.catch_up_failed', err: (err as Error).message },
          'publication catch-up failed',
        ),
      );
    this.mirrors = new DirectoryMirrors({
      config,
      redis,
      connect: (name) => this.backends.connect(name),
      trust: () => this.#trust,
      whitelist: this.whitelist,
      clock: this.clock,
      logger: logger.child({ component: 'directory' }),
      journal: this.journal,
      metrics: this.metrics,
      onCrlChange: () => this.#reloadTrust(),
      onSwitch: (mirror, version) => {
        if (mirror === 'extraction') void this.#checkDrift(version);
      },
    });
    await this.mirrors.start();
    // start() rewrote the mirrored CRL files: put them in service before any listener opens.
    this.#reloadTrust();
    this.spool = new Spool(config.dataDir);
    await this.spool.init();
    this.#buildDelivery();
    this.lifecycle = new LifecycleWiring({
      config,
      redis,
      connect: (name) => this.backends.connect(name),
      registry: this.registry,
      publication: this.publication,
      delivery: this.delivery,
      spool: this.spool,
      clock: this.clock,
      journal: this.journal,
      logger: logger.child({ component: 'lifecycle' }),
      metrics: this.metrics,
      mailPurger: storePurger(store),
    });
    this.authenticator = await this.#buildAuthenticator();
    this.#health = new StoreHealthMonitor(store, () => void this.delivery.retryLocalNow(), logger);
    this.#wireMetricSources();
    await this.delivery.start();
    await this.lifecycle.scheduler.start();
    this.#health.start();
    await this.#listen();
    this.journal.record({
      event: 'gateway.started',
      mode: config.mode,
      embedded: this.backends.embedded,
      addresses: this.#describeAddresses(),
    });
  }

  /**
   * Compares what we think is published with a new extraction (issue #5 drift), in one process per
   * extraction version (a Redis claim), since every process sees the switch.
   */
  async #checkDrift(version: number): Promise<void> {
    const publication = this.publication;
    if (!publication) return;
    try {
      const claim = `${this.config.redis.prefix}drift:checked:${version}`;
      if ((await this.backends.redis.set(claim, String(process.pid), 'EX', 86_400, 'NX')) !== 'OK') return;
      const directory = this.mirrors.directory;
      await publication.reconcile({
        has: async (addresses) => {
          const { entries } = await directory.lookup(addresses);
          return addresses.map((a) => entries.has(a));
        },
      });
    } catch (err) {
      this.logger.warn(
        { event: 'publication.drift_failed', err: (err as Error).message },
        'drift check failed',
      );
    }
  }

  /** The publisher of our mailboxes in the national directory, when enabled (FHIR PATCH, mTLS). */
  #buildPublication(): PublicationService | undefined {
    const { config } = this;
    const pub = config.publication;
    if (!pub.enabled) return undefined;
    const { fhir, enabled: _enabled, ...settings } = pub;
    return new PublicationService({
      redis: this.backends.redis,
      connect: (n) => this.backends.connect(n),
      prefix: config.redis.prefix,
      bals: { get: (a) => this.registry.get(a), list: (q) => this.registry.list(q) },
      publisher: new FhirPublisher({
        settings: { ...fhir, baseUrl: fhir.baseUrl ?? '' },
        tls: () => this.#trust,
        tlsProfile: { minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc },
        timeoutMs: pub.timeoutSeconds * 1000,
      }),
      clock: this.clock,
      journal: this.journal,
      logger: this.logger.child({ component: 'publication' }),
      settings,
      observer: { call: (operation, outcome) => this.metrics.publicationCalls.inc({ operation, outcome }) },
    });
  }

  /** The spool, the delivery queue and its worker: LMTP for our mailboxes, the relay for others. */
  #buildDelivery(): void {
    const { config, logger, metrics } = this;
    const { store } = this.backends;
    const hostname = config.smtp.hostname;
    this.relay = new RelayTransport({
      trust: () => this.#trust,
      profile: { minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc },
      whitelist: () => this.whitelist.current(),
      heloName: config.relay.heloName ?? hostname,
      routes: config.relay.routes,
      port: config.relay.port,
      lookupMx: systemMxLookup({
        timeoutMs: config.relay.dns.timeoutSeconds * 1000,
        tries: config.relay.dns.tries,
        servers: config.relay.dns.servers,
      }),
      connectTimeoutMs: config.relay.connectTimeoutSeconds * 1000,
      commandTimeoutMs: config.relay.commandTimeoutSeconds * 1000,
      maxConnectionsPerDestination: config.relay.maxConnectionsPerDestination,
      maxMessagesPerConnection: config.relay.maxMessagesPerConnection,
      idleMs: config.relay.idleSeconds * 1000,
    });
    const policy = {
      retryInitialSeconds: config.delivery.retryInitialSeconds,
      retryMaxSeconds: config.delivery.retryMaxSeconds,
      maxAgeHours: config.delivery.maxAgeHours,
      delayNoticeHours: config.delivery.delayNoticeHours,
    };
    const ourDomains = new Set(config.domains);
    const routeOf = (address: string): GeneratedRoute => {
      const r = routeSubmission(address, ourDomains, this.whitelist.current());
      return r.kind === 'lookup' ? 'local' : r.kind === 'relay' ? 'relay' : undefined;
    };
    const notifier = new DsnNotifier({
      spool: this.spool,
      clock: this.clock,
      logger: logger.child({ component: 'dsn' }),
      journal: this.journal,
      hostname,
      policy: { delayByDefault: config.delivery.delayNoticeByDefault, maxAgeHours: policy.maxAgeHours },
      routeOf,
      inject: (m) => this.delivery.inject(m),
      onSent: (action) => metrics.dsnSent.inc({ action }),
    });
    this.worker = new DestinationWorker({
      spool: this.spool,
      clock: this.clock,
      logger: logger.child({ component: 'delivery' }),
      journal: this.journal,
      policy,
      local: localDestination(lmtpTransport(store, hostname, config.delivery.lmtpTimeoutSeconds * 1000)),
      relay: relayDestination(this.relay, { trustRetryAttempts: config.relay.trustRetryAttempts }),
      notifier,
      observer: {
        attempt: (kind, outcome, reason) => {
          if (kind === 'local') metrics.deliveryAttempts.inc({ outcome });
          else metrics.relayAttempts.inc({ outcome, reason });
        },
        delivered: (kind, s) =>
          (kind === 'local' ? metrics.deliveryLatency : metrics.relayLatency).observe(s),
        finalRelay: (outcome, patient) => metrics.relayRecipients.inc({ outcome, patient: String(patient) }),
      },
      onSettled: (envelope, states) => {
        this.lifecycle.onSettled(envelope, states);
        this.delivery.emit('settled', envelope, states);
      },
      onDeferred: (envelope, state) => this.delivery.emit('deferred', envelope, state),
    });
    this.delivery = new DeliveryQueue({
      connect: (name) => this.backends.connect(name),
      spool: this.spool,
      worker: this.worker,
      clock: this.clock,
      logger: logger.child({ component: 'queue' }),
      options: {
        prefix: `${config.redis.prefix}bull`,
        nodeId: config.node.id,
        localConcurrency: config.delivery.concurrency,
        relayConcurrency: config.relay.concurrency,
        relayEnabled: config.relay.enabled,
        lockSeconds: config.delivery.lockSeconds,
        reconcileSeconds: config.delivery.reconcileSeconds,
        drainSeconds: config.delivery.drainSeconds,
      },
    });
  }

  async #buildAuthenticator(): Promise<GatewayAuthenticator> {
    const { config } = this;
    if (config.mode === 'development') await ensureDevIssuer(config.pkiDir);
    const verifier = new JwtTokenVerifier({
      issuers: effectiveIssuers(config),
      clockSkewSeconds: config.auth.clockSkewSeconds,
      jwksCacheSeconds: config.auth.jwksCacheSeconds,
      mode: config.mode,
      clock: this.clock,
      onJwksFetch: (issuer, outcome) => this.metrics.jwksFetches.inc({ issuer, outcome }),
    });
    const registry = this.registry;
    return new GatewayAuthenticator({
      config: { ...config.auth, mode: config.mode },
      // Every successful login also feeds the lifecycle (indicators, return of a mailbox).
      registry: {
        get: (a) => registry.get(a),
        grants: (a) => registry.grants(a),
        balsForPerson: (id, now) => registry.balsForPerson(id, now),
        balsForCertificate: (dn, now) => registry.balsForCertificate(dn, now),
        recordActivity: async (address, channel, at) => {
          const recorded = await registry.recordActivity(address, channel, at);
          this.lifecycle.onActivity(address, channel, at);
          return recorded;
        },
      },
      redis: this.backends.redis,
      prefix: config.redis.prefix,
      authorities: () => this.#trust.authorities,
      journal: this.journal,
      logger: this.logger.child({ component: 'auth' }),
      clock: this.clock,
      verifier,
      observer: {
        attempt: (labels) => this.metrics.authAttempts.inc(labels),
        lockout: (scope) => this.metrics.authLockouts.inc({ scope }),
      },
    });
  }

  /** Mailboxes a person owns: where a delegate's `Sender:` may point. */
  async #ownMailboxes(principal: Principal): Promise<string[]> {
    if (principal.kind !== 'person') return [];
    const bals = await this.registry.balsForPerson(principal.nationalId);
    return bals.filter((b) => b.right === 'owner' && b.status === 'active').map((b) => b.bal);
  }

  async #listenSubmission(): Promise<void> {
    const { host, port, tlsPort } = this.config.smtp.submission;
    this.submission = new SubmissionServer({
      config: this.config,
      trust: () => this.#trust,
      whitelist: this.whitelist,
      mailboxes: this.registry,
      ownMailboxes: (p) => this.#ownMailboxes(p),
      authenticator: this.authenticator,
      sasl: { oauthBearer: decodeOauthbearer, external: decodeExternal },
      spool: this.spool,
      onAccepted: (env) => {
        void this.delivery.enqueue(env);
        this.lifecycle.onSubmitted(env);
      },
      clock: this.clock,
      logger: this.logger.child({ component: 'submission' }),
      journal: this.journal,
      metrics: this.metrics,
    });
    const a = await this.submission
      .listen(host, port, tlsPort)
      .catch(explainListen('smtp.submission', host, port));
    this.addresses.submission = a.starttls;
    this.addresses.submissionTls = a.implicit;
  }

  async #listenImap(): Promise<void> {
    const { config, backends } = this;
    this.imap = new ImapFrontEnd({
      config: config.imap,
      tls: () => ({ ...this.#trust, minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc }),
      authenticator: this.authenticator,
      store: { imap: backends.store.imap, master: backends.store.master },
      logger: this.logger.child({ component: 'imap' }),
      journal: this.journal,
      clock: this.clock,
      observer: imapObserver(this.metrics.registry, this.metrics),
    });
    // listen() names imap.port / imap.tlsPort itself when a port cannot be bound.
    const a = await this.imap.listen();
    this.addresses.imap = a.starttls;
    this.addresses.imapTls = a.implicit;
  }

  async #listen(): Promise<void> {
    const { config } = this;
    if (config.smtp.mx.enabled) {
      this.mx = new MxServer({
        config,
        trust: () => this.#trust,
        whitelist: this.whitelist,
        mailboxes: this.registry,
        spool: this.spool,
        onAccepted: (env) => void this.delivery.enqueue(env),
        clock: this.clock,
        logger: this.logger.child({ component: 'smtp' }),
        journal: this.journal,
        metrics: this.metrics,
      });
      const { host, port } = config.smtp.mx;
      this.addresses.mx = await this.mx.listen(port, host).catch(explainListen('smtp.mx', host, port));
    }
    if (config.smtp.submission.enabled) await this.#listenSubmission();
    if (config.imap.enabled) await this.#listenImap();
    if (config.metrics.enabled) {
      this.#http = createObservabilityServer(this.metrics.registry, [
        { name: 'redis', check: async () => (await this.backends.redis.ping()) === 'PONG' },
        { name: 'store', check: () => Promise.resolve(this.#health?.up ?? false) },
        {
          name: 'smtp',
          check: () => Promise.resolve(!config.smtp.mx.enabled || this.mx?.server.server.listening === true),
        },
        {
          name: 'submission',
          check: () =>
            Promise.resolve(
              !config.smtp.submission.enabled || this.submission?.starttls.server.listening === true,
            ),
        },
        {
          name: 'imap',
          check: () => Promise.resolve(!config.imap.enabled || this.addresses.imap !== undefined),
        },
      ]);
      const { host, port } = config.metrics;
      this.addresses.metrics = await listenHttp(this.#http, port, host).catch(
        explainListen('metrics', host, port),
      );
    }
    if (config.admin.enabled) {
      const token = config.admin.tokenFile ? readSecretFile(config.admin.tokenFile) : undefined;
      const queue = this.delivery;
      const admin = buildAdminApi({
        reload: async () => {
          await this.reload();
          return { certificateNotAfter: this.#trust.certificate.validTo };
        },
        queue: {
          list: (o) => queue.list(o),
          show: (id) => queue.show(id),
          retry: async (id, actor) => {
            const job = await queue.retry(id);
            this.journal.record({ event: 'queue.retried', jobId: id, actor });
            return job;
          },
          remove: async (id, actor) => {
            const job = await queue.show(id);
            await queue.remove(id);
            await this.worker.abandon(job.data.spoolId, job.data.destination, 'deleted by the operator');
            this.journal.record({ event: 'queue.deleted', jobId: id, actor });
            return job;
          },
        },
        registry: this.registry,
        ...(this.publication ? { publication: this.publication } : {}),
        logger: this.logger,
        ...(token ? { token } : {}),
        secrets: {
          store: this.authenticator.secrets,
          passwordTypes: config.auth.passwordTypes,
          journal: this.journal,
        },
      });
      this.#admin = admin;
      const { host, port } = config.admin;
      await admin.listen({ port, host }).catch(explainListen('admin', host, port));
      this.addresses.admin = admin.server.address() as AddressInfo;
    }
  }

  #wireMetricSources(): void {
    const s = this.metrics.sources;
    s.spoolStats = () => this.spool.stats(this.clock.now());
    s.queueJobs = () => this.delivery.counts();
    s.nodes = () => this.delivery.nodes();
    s.relayConnections = () =>
      [...this.relay.connections()].map(([destination, count]) => ({ destination, count }));
    s.authLockoutsActive = () => this.authenticator.limiter.activeLockouts();
    s.redisUp = async () => (await this.backends.redis.ping().catch(() => '')) === 'PONG';
    s.storeUp = async () => this.#health?.check() ?? { imap: false, lmtp: false };
    s.whitelist = () => {
      const w = this.whitelist.current();
      return {
        entries: w.size,
        domains: w.domainCount,
        operators: w.operatorCount,
        ageSeconds: (this.clock.now().getTime() - Date.parse(w.generatedAt)) / 1000,
      };
    };
    s.bals = async () => {
      const counts = await this.registry.countByStatusAndType();
      return Object.entries(counts).flatMap(([status, byType]) =>
        Object.entries(byType).map(([type, count]) => ({ type, status, count })),
      );
    };
    Object.assign(s, this.mirrors.metricSources());
    s.publicationStates = async () => this.publication?.countByState() ?? {};
    s.publicationDrift = async () => {
      const r = await this.publication?.lastDrift();
      return r
        ? { publishedMissing: r.publishedMissing.count, unpublishedPresent: r.unpublishedPresent.count }
        : undefined;
    };
    s.certificateExpirySeconds = () =>
      (Date.parse(this.#trust.certificate.validTo) - this.clock.now().getTime()) / 1000;
  }

  #describeAddresses(): Record<string, string> {
    return describeAddresses(this.addresses);
  }

  /**
   * Reloads the whitelist (a refresh of its mirror, whatever its source) and the trust material,
   * keeping the last good copy of what fails (SIGHUP).
   */
  async reload(): Promise<void> {
    const log = this.logger.child({ event: 'gateway.reload' });
    try {
      const r = await this.mirrors.refresh('whitelist');
      log.info({ outcome: r.outcome, reason: r.reason }, 'whitelist refreshed');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'whitelist refresh failed; last good copy kept');
    }
    this.#reloadTrust();
    this.journal.record({ event: 'gateway.reloaded' });
  }

  /**
   * Our certificate and key, the authorities and the CRLs (configured files, then the mirrored ones:
   * OpenSSL uses the newest CRL of an authority) into every TLS context, without a restart.
   */
  #reloadTrust(): void {
    const log = this.logger.child({ event: 'gateway.trust_reload' });
    try {
      const tls = { ...this.config.tls, crlFiles: [...this.config.tls.crlFiles, ...this.mirrors.crlFiles()] };
      const { material, staleCrls } = loadTrustMaterial(tls, this.#trust);
      if (this.config.mode === 'production') assertProductionTrust(material);
      this.#trust = material;
      this.mx?.reloadTrust();
      this.submission?.reloadTrust();
      this.imap?.reloadTrust();
      for (const st of staleCrls) log.error(st, 'revocation list unreadable; last good copy kept');
    } catch (err) {
      log.error({ err: (err as Error).message }, 'trust material reload failed; previous kept');
    }
  }

  /** Graceful stop: listeners first, then workers, then backends. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const step = async (name: string, fn: () => unknown) => {
      try {
        await fn();
      } catch (err) {
        this.logger.error(
          { event: 'gateway.stop_failed', step: name, err: (err as Error).message },
          'stop step failed',
        );
      }
    };
    await step('mx', () => this.mx?.close());
    await step('submission', () => this.submission?.close());
    await step('imap', () => this.imap?.close());
    await step('admin', () => this.#admin?.close());
    await step('http', () => this.#http && new Promise((r) => this.#http?.close(r)));
    this.#health?.stop();
    await step('lifecycle', () => this.lifecycle?.stop());
    await step('delivery', () => this.delivery?.stop());
    await step('directory', () => this.mirrors?.stop());
    await step('publication', () => this.publication?.stop());
    await step('relay', () => this.relay?.close());
    // `journal` and `backends` are unset when start failed early.
    await step('journal', () => {
      this.journal?.record({ event: 'gateway.stopped' });
      this.journal?.close();
    });
    await step('backends', () => this.backends?.stop());
  }
}
