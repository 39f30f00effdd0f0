import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * The metric catalogue (STYLE.md convention 3): names `mssgw_<area>_<name>_<unit>`, counters `_total`,
 * labels bounded (reasons come from the error catalogue, never an address or message id).
 * Gauges that reflect live state read it at scrape time through `sources`, set by the composition root.
 */
export interface MetricSources {
  spoolDepth?: () => number;
  spoolOldestAgeSeconds?: () => number;
  spoolAwaitingRelay?: () => number;
  authLockoutsActive?: () => Promise<Record<string, number>>;
  redisUp?: () => Promise<boolean>;
  storeUp?: () => Promise<{ imap: boolean; lmtp: boolean }>;
  whitelist?: () => { entries: number; domains: number; operators: number; ageSeconds: number };
  bals?: () => Promise<Array<{ type: string; status: string; count: number }>>;
  certificateExpirySeconds?: () => number;
}

export function createMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'mssgw_' });
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
      help: 'Client authentications by channel (imap, submission), mechanism and outcome (ok or reason)',
      labelNames: ['channel', 'mechanism', 'outcome'] as const,
      registers: r,
    }),
    authLockouts: new Counter({
      name: 'mssgw_auth_lockouts_total',
      help: 'Failure limits reached, by scope (address, source)',
      labelNames: ['scope'] as const,
      registers: r,
    }),
    authLockoutsActive: new Gauge({
      name: 'mssgw_auth_lockouts_active',
      help: 'Mailboxes (scope=address) and client sources (scope=source) locked out now',
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
    spoolAwaitingRelay: new Gauge({
      name: 'mssgw_spool_awaiting_relay_messages',
      help: 'Spooled messages whose remaining recipients wait for the outbound relay',
      registers: r,
      collect() {
        this.set(sources.spoolAwaitingRelay?.() ?? 0);
      },
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
      help: 'Messages in the spool waiting for delivery',
      registers: r,
      collect() {
        this.set(sources.spoolDepth?.() ?? 0);
      },
    }),
    spoolOldest: new Gauge({
      name: 'mssgw_spool_oldest_age_seconds',
      help: 'Age of the oldest message in the spool',
      registers: r,
      collect() {
        this.set(sources.spoolOldestAgeSeconds?.() ?? 0);
      },
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
      help: 'Whitelist in service: entries, domains and operator DNs',
      labelNames: ['kind'] as const,
      registers: r,
      collect() {
        const w = sources.whitelist?.();
        if (!w) return;
        this.set({ kind: 'entries' }, w.entries);
        this.set({ kind: 'domains' }, w.domains);
        this.set({ kind: 'operators' }, w.operators);
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
    certificateExpiry: new Gauge({
      name: 'mssgw_tls_certificate_expiry_seconds',
      help: 'Seconds until our own certificate expires',
      registers: r,
      collect() {
        this.set(sources.certificateExpirySeconds?.() ?? 0);
      },
    }),
  };
  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;
