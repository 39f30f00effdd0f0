import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The metric catalogue (STYLE.md convention 3): names `mssgw_<area>_<name>_<unit>`, counters `_total`,
 * labels bounded (reasons come from the error catalogue, never an address or message id).
 * Gauges that reflect live state read it at scrape time through `sources`, set by the composition root.
 */
export interface MetricSources {
  /** Committed spool entries and the age of the oldest (delivery/DeliveryQueue.spoolStats). */
  spoolStats?: () => Promise<{ messages: number; oldestAgeSeconds: number }>;
  /** Jobs of the delivery queues by queue (local, relay) and BullMQ state. */
  queueJobs?: () => Promise<ReadonlyArray<{ queue: string; node: string; state: string; count: number }>>;
  /** Destinations waiting in memory for a hand-off slot (delivery/DeliveryQueue.handOffWaiting). */
  handOffWaiting?: () => { local: number; relay: number };
  /** Every node known to the cluster and when it last reconciled (its heartbeat). */
  nodes?: () => Promise<ReadonlyArray<{ node: string; lastSeen: string }>>;
  /** Open relay connections by recipient domain (this process). */
  relayConnections?: () => ReadonlyArray<{ destination: string; count: number }>;
  authLockoutsActive?: () => Promise<Record<string, number>>;
  redisUp?: () => Promise<boolean>;
  storeUp?: () => Promise<{ imap: boolean; lmtp: boolean }>;
  whitelist?: () => {
    entries: number;
    domains: number;
    operators: number;
    rejected: number;
    ageSeconds: number;
  };
  bals?: () => Promise<Array<{ type: string; status: string; count: number }>>;
  certificateExpirySeconds?: () => number;
  /** Mailboxes per publication state (publication/PublicationService.countByState). */
  publicationStates?: () => Promise<Record<string, number>>;
  /** Counts of the last drift report, absent before the first (publication/PublicationService.lastDrift). */
  publicationDrift?: () => Promise<{ publishedMissing: number; unpublishedPresent: number } | undefined>;
  /** Directory mirrors in service (directory/DirectoryMirrors.metricSources). */
  mirrors?: () => ReadonlyArray<{ mirror: string; ageSeconds: number; entries: number }>;
  /** Seconds until the nextUpdate of each revocation list in service (negative: overdue). */
  crlNextUpdates?: () => ReadonlyArray<{ crl: string; seconds: number }>;
}

const GAUGES_NAMED_AS_COUNTERS = [
  'nodejs_active_handles_total',
  'nodejs_active_requests_total',
  'nodejs_active_resources_total',
];

export function createMetrics() {
  const registry = new Registry();
  // Node's process metrics under their usual names (process_*, nodejs_*), which dashboards and
  // exporters expect: our prefix is for our metrics. prom-client's three active-handle gauges end in
  // _total, which Prometheus reserves for counters; nodejs_active_resources{type} (also prom-client's)
  // tells the same.
  collectDefaultMetrics({ register: registry });
  for (const name of GAUGES_NAMED_AS_COUNTERS) registry.removeSingleMetric(name);
  const sources: MetricSources = {};
  const r = [registry];

  const metrics = {
    registry,
    sources,
    smtpConnections: new Counter({
      name: 'mssgw_smtp_connections_total',
      help: 'SMTP connections accepted, by listener',
      labelNames: ['listener'] as const,
      registers: r,
    }),
    smtpConnectionsRefused: new Counter({
      name: 'mssgw_smtp_connections_refused_total',
      help: 'SMTP connections refused or closed by a limit (max-connections, max-per-source, shutting-down, pretls-timeout, preauth-timeout), by listener',
      labelNames: ['listener', 'reason'] as const,
      registers: r,
    }),
    smtpActiveConnections: new Gauge({
      name: 'mssgw_smtp_connections_active',
      help: 'SMTP connections open now, by listener',
      labelNames: ['listener'] as const,
      registers: r,
    }),
    tlsHandshakes: new Counter({
      name: 'mssgw_tls_handshakes_total',
      help: 'TLS handshakes by listener, outcome (ok, failed) and reason (protocol, cipher, resumed, ...)',
      labelNames: ['listener', 'outcome', 'reason'] as const,
      registers: r,
    }),
    peerVerdicts: new Counter({
      name: 'mssgw_smtp_peer_verdicts_total',
      help: 'Inter-operator peer identity checks after STARTTLS, by outcome (accepted or refusal reason)',
      labelNames: ['listener', 'outcome'] as const,
      registers: r,
    }),
    smtpCommands: new Counter({
      name: 'mssgw_smtp_commands_total',
      help: 'MAIL, RCPT and DATA outcomes by listener, command and outcome (accepted or refusal reason)',
      labelNames: ['listener', 'command', 'outcome'] as const,
      registers: r,
    }),
    messageBytes: new Histogram({
      name: 'mssgw_smtp_message_size_bytes',
      help: 'Size of accepted messages',
      labelNames: ['listener'] as const,
      buckets: [4e3, 32e3, 256e3, 1e6, 4e6, 16e6, 64e6],
      registers: r,
    }),
    authAttempts: new Counter({
      name: 'mssgw_auth_attempts_total',
      help: 'Client authentications by channel (imap, submission), mechanism and outcome (ok or the refusal: token_invalid, rate_limited, ...)',
      labelNames: ['channel', 'mechanism', 'outcome'] as const,
      registers: r,
    }),
    authLockouts: new Counter({
      name: 'mssgw_auth_lockouts_total',
      help: 'Failure limits reached, by scope (source, source_mailbox)',
      labelNames: ['scope'] as const,
      registers: r,
    }),
    authLockoutsActive: new Gauge({
      name: 'mssgw_auth_lockouts_active',
      help: 'Client sources (scope=source) and sources on one mailbox (scope=source_mailbox) locked out now',
      labelNames: ['scope'] as const,
      registers: r,
      async collect() {
        const active = await sources.authLockoutsActive?.().catch(() => undefined);
        if (!active) return;
        for (const [scope, n] of Object.entries(active)) this.set({ scope }, n);
      },
    }),
    jwksFetches: new Counter({
      name: 'mssgw_auth_jwks_fetches_total',
      help: 'Fetches of token issuers key sets, by issuer and outcome',
      labelNames: ['issuer', 'outcome'] as const,
      registers: r,
    }),
    spoolTemporarySwept: new Counter({
      name: 'mssgw_spool_temporary_swept_total',
      help: 'Temporary spool files an interrupted process left, removed at start',
      registers: r,
    }),
    deliveryAttempts: new Counter({
      name: 'mssgw_delivery_local_attempts_total',
      help: 'Per-recipient delivery attempts to the mailbox store, by outcome',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    deliveryLatency: new Histogram({
      name: 'mssgw_delivery_local_latency_seconds',
      help: 'Time from acceptance (250) to delivery in the mailbox store',
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600],
      registers: r,
    }),
    spoolMessages: new Gauge({
      name: 'mssgw_spool_messages',
      help: 'Messages in the spool with at least one recipient without a final outcome',
      registers: r,
      async collect() {
        this.set((await sources.spoolStats?.().catch(() => undefined))?.messages ?? 0);
      },
    }),
    spoolOldest: new Gauge({
      name: 'mssgw_spool_oldest_age_seconds',
      help: 'Age of the oldest message in the spool',
      registers: r,
      async collect() {
        this.set((await sources.spoolStats?.().catch(() => undefined))?.oldestAgeSeconds ?? 0);
      },
    }),
    queueJobs: new Gauge({
      name: 'mssgw_queue_jobs',
      help: 'Delivery jobs (one per message and destination) by queue, owning node and state',
      labelNames: ['queue', 'node', 'state'] as const,
      registers: r,
      async collect() {
        this.reset();
        for (const row of (await sources.queueJobs?.().catch(() => undefined)) ?? [])
          this.set({ queue: row.queue, node: row.node, state: row.state }, row.count);
      },
    }),
    handOffWaiting: new Gauge({
      name: 'mssgw_delivery_handoff_waiting',
      help: 'Destinations committed and waiting in memory for a delivery slot in this process, by queue',
      labelNames: ['queue'] as const,
      registers: r,
      collect() {
        const waiting = sources.handOffWaiting?.() ?? { local: 0, relay: 0 };
        this.set({ queue: 'local' }, waiting.local);
        this.set({ queue: 'relay' }, waiting.relay);
      },
    }),
    nodeLastSeen: new Gauge({
      name: 'mssgw_node_last_seen_timestamp_seconds',
      help: 'When each node known to the cluster last reconciled its spool (a node down stops moving)',
      labelNames: ['node'] as const,
      registers: r,
      async collect() {
        this.reset();
        for (const row of (await sources.nodes?.().catch(() => undefined)) ?? [])
          this.set({ node: row.node }, Date.parse(row.lastSeen) / 1000);
      },
    }),
    queueOldestAge: new Gauge({
      name: 'mssgw_queue_oldest_job_age_seconds',
      help: 'Age of the oldest message still waiting for a recipient (0 when none)',
      registers: r,
      async collect() {
        this.set((await sources.spoolStats?.().catch(() => undefined))?.oldestAgeSeconds ?? 0);
      },
    }),
    relayAttempts: new Counter({
      name: 'mssgw_relay_attempts_total',
      help: 'Per-recipient relay attempts to other operators, by outcome and reason',
      labelNames: ['outcome', 'reason'] as const,
      registers: r,
    }),
    relayLatency: new Histogram({
      name: 'mssgw_relay_delivery_latency_seconds',
      help: 'Time from acceptance (250) to acceptance by the remote operator',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 15, 60, 300, 3600, 14400, 86400],
      registers: r,
    }),
    relayRecipients: new Counter({
      name: 'mssgw_relay_recipients_total',
      help: 'Relay recipients with a final outcome; patient="true" for Mon espace santé mailboxes',
      labelNames: ['outcome', 'patient'] as const,
      registers: r,
    }),
    relayConnections: new Gauge({
      name: 'mssgw_relay_connections_active',
      help: 'Open connections to other operators by recipient domain (this process)',
      labelNames: ['destination'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const c of sources.relayConnections?.() ?? []) this.set({ destination: c.destination }, c.count);
      },
    }),
    dsnSent: new Counter({
      name: 'mssgw_dsn_sent_total',
      help: 'Delivery status notifications spooled for senders, by action',
      labelNames: ['action'] as const,
      registers: r,
    }),
    redisUp: new Gauge({
      name: 'mssgw_redis_up',
      help: '1 when Redis answers PING',
      registers: r,
      async collect() {
        this.set((await sources.redisUp?.()) ? 1 : 0);
      },
    }),
    storeUp: new Gauge({
      name: 'mssgw_store_up',
      help: '1 when the mailbox store service answers, by service (imap, lmtp)',
      labelNames: ['service'] as const,
      registers: r,
      async collect() {
        const up = (await sources.storeUp?.()) ?? { imap: false, lmtp: false };
        this.set({ service: 'imap' }, up.imap ? 1 : 0);
        this.set({ service: 'lmtp' }, up.lmtp ? 1 : 0);
      },
    }),
    whitelistEntries: new Gauge({
      name: 'mssgw_whitelist_entries',
      help: 'Whitelist in service: entries, domains, operator DNs and malformed entries left out (rejected)',
      labelNames: ['kind'] as const,
      registers: r,
      collect() {
        const w = sources.whitelist?.();
        if (!w) return;
        this.set({ kind: 'entries' }, w.entries);
        this.set({ kind: 'domains' }, w.domains);
        this.set({ kind: 'operators' }, w.operators);
        this.set({ kind: 'rejected' }, w.rejected);
      },
    }),
    whitelistAge: new Gauge({
      name: 'mssgw_whitelist_age_seconds',
      help: 'Age of the whitelist in service (since its DateDeGeneration)',
      registers: r,
      collect() {
        this.set(sources.whitelist?.().ageSeconds ?? 0);
      },
    }),
    bals: new Gauge({
      name: 'mssgw_registry_bals',
      help: 'Mailboxes in the registry by type and status',
      labelNames: ['type', 'status'] as const,
      registers: r,
      async collect() {
        this.reset();
        try {
          for (const row of (await sources.bals?.()) ?? [])
            this.set({ type: row.type, status: row.status }, row.count);
        } catch {
          // Redis down: mssgw_redis_up says so; leave this gauge empty rather than fail the scrape.
        }
      },
    }),
    mirrorRefreshes: new Counter({
      name: 'mssgw_mirror_refresh_total',
      help: 'Directory mirror refreshes by mirror, outcome (accepted, unchanged, refused, failed, skipped) and reason',
      labelNames: ['mirror', 'outcome', 'reason'] as const,
      registers: r,
    }),
    mirrorAge: new Gauge({
      name: 'mssgw_mirror_age_seconds',
      help: 'Seconds since the copy in service of each directory mirror was last confirmed by its source',
      labelNames: ['mirror'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const m of sources.mirrors?.() ?? []) this.set({ mirror: m.mirror }, m.ageSeconds);
      },
    }),
    mirrorEntries: new Gauge({
      name: 'mssgw_mirror_entries',
      help: 'Entries of the copy in service of each directory mirror (domains, addresses, revoked serials)',
      labelNames: ['mirror'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const m of sources.mirrors?.() ?? []) this.set({ mirror: m.mirror }, m.entries);
      },
    }),
    crlNextUpdate: new Gauge({
      name: 'mssgw_crl_next_update_seconds',
      help: 'Seconds until the nextUpdate of each revocation list in service (negative: overdue)',
      labelNames: ['crl'] as const,
      registers: r,
      collect() {
        this.reset();
        for (const c of sources.crlNextUpdates?.() ?? []) this.set({ crl: c.crl }, c.seconds);
      },
    }),
    publicationBals: new Gauge({
      name: 'mssgw_publication_bals',
      help: 'Mailboxes by publication state in the national directory (pending, published, unpublished, unpublished-inactive, failed)',
      labelNames: ['state'] as const,
      registers: r,
      async collect() {
        const counts = await sources.publicationStates?.().catch(() => undefined);
        this.reset();
        for (const [state, n] of Object.entries(counts ?? {})) this.set({ state }, n);
      },
    }),
    publicationCalls: new Counter({
      name: 'mssgw_publication_calls_total',
      help: 'Calls to the national directory by operation (insert, replace, delete) and outcome (ok, not_found, ambiguous, entry_missing, rejected, unavailable)',
      labelNames: ['operation', 'outcome'] as const,
      registers: r,
    }),
    publicationDrift: new Gauge({
      name: 'mssgw_publication_drift_bals',
      help: 'Last drift check: mailboxes we publish missing from the extraction (published_missing), unpublished ones still in it (unpublished_present)',
      labelNames: ['kind'] as const,
      registers: r,
      async collect() {
        const drift = await sources.publicationDrift?.().catch(() => undefined);
        this.reset();
        if (!drift) return;
        this.set({ kind: 'published_missing' }, drift.publishedMissing);
        this.set({ kind: 'unpublished_present' }, drift.unpublishedPresent);
      },
    }),
    certificateExpiry: new Gauge({
      name: 'mssgw_tls_certificate_expiry_seconds',
      help: 'Seconds until our own certificate expires',
      registers: r,
      collect() {
        this.set(sources.certificateExpirySeconds?.() ?? 0);
      },
    }),
    lifecycleUnpublications: new Counter({
      name: 'mssgw_lifecycle_unpublications_total',
      help: 'Unpublications of inactive mailboxes asked of the directory, by outcome (ok, refused, error)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    lifecycleRepublications: new Counter({
      name: 'mssgw_lifecycle_republications_total',
      help: 'Republications of mailboxes used again after an inactivity unpublication, by outcome (ok, refused, error)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    lifecycleWarnings: new Counter({
      name: 'mssgw_lifecycle_warnings_total',
      help: 'Inactivity warnings put into mailboxes before their unpublication, by outcome (ok, error)',
      labelNames: ['outcome'] as const,
      registers: r,
    }),
    connectionRefusalReplies: new Counter({
      name: 'mssgw_connection_refusal_replies_total',
      help: 'Refusals on implicit-TLS listeners: handshake completed and 421/BYE sent (sent), closed at once beyond the refusal-handshake budget (over-budget), handshake not completed in time (failed)',
      labelNames: ['listener', 'outcome'] as const,
      registers: r,
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
