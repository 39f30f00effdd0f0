import { hostname } from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * The one configuration schema (STYLE.md convention 7): types, defaults and documentation of every
 * setting. Unknown keys are errors. Every relative path is resolved against the working directory.
 *
 * Environment overrides follow the key path: `smtp.mx.port` is `MSSGW_SMTP__MX__PORT`,
 * `dataDir` is `MSSGW_DATA_DIR` (camelCase becomes SNAKE_CASE, `__` separates levels).
 */

const port = z.number().int().min(0).max(65535);
const host = z.string().min(1);
const filePath = z.string().min(1);

const Endpoint = z.strictObject({
  host: host.describe('Host name or IP address'),
  port: port.describe('TCP port'),
});

export const TLS_PROFILE_CIPHERS_TLS12 = [
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES128-GCM-SHA256',
] as const;
export const TLS_PROFILE_CIPHERS_TLS12_CBC = ['ECDHE-RSA-AES256-SHA384', 'ECDHE-RSA-AES128-SHA256'] as const;

const TlsConfig = z
  .strictObject({
    certFile: filePath
      .default('certs-dev/gateway.crt')
      .describe('Our IGC-Santé server/client certificate (PEM)'),
    keyFile: filePath.default('certs-dev/gateway.key').describe('Private key of certFile (PEM)'),
    chainFiles: z
      .array(filePath)
      .default(['certs-dev/ca/org.crt'])
      .describe('Intermediate certificates sent after certFile'),
    caFiles: z
      .array(filePath)
      .default(['certs-dev/ca/root.crt', 'certs-dev/ca/org.crt', 'certs-dev/ca/pp.crt'])
      .describe('Trusted IGC-Santé roots and intermediates used to verify peers (PEM)'),
    crlFiles: z
      .array(filePath)
      .default(['certs-dev/ca/root.crl', 'certs-dev/ca/org.crl', 'certs-dev/ca/pp.crl'])
      .describe('Revocation lists (PEM or DER), one per authority; revocation is always checked'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted'),
    allowCbc: z
      .boolean()
      .default(false)
      .describe('Also offer the ECDHE-RSA AES-CBC-SHA256/384 suites the MSSanté profile tolerates'),
  })
  .prefault({});

const MxConfig = z
  .strictObject({
    enabled: z.boolean().default(true),
    host: host.default('0.0.0.0').describe('Listen address of the inter-operator SMTP (MX) port'),
    port: port.default(2525).describe('MX port (25 in production)'),
    maxConnections: z.number().int().min(1).default(200),
    maxPreauthPerSource: z
      .number()
      .int()
      .min(1)
      .default(20)
      .describe('Connections from one address (IPv6: one /64) without a trusted certificate yet'),
    preTlsTimeoutSeconds: z
      .number()
      .int()
      .min(5)
      .default(30)
      .describe('Time from connect until TLS with a trusted certificate; then 421 4.7.0 and close'),
    socketTimeoutSeconds: z.number().int().min(5).default(300).describe('RFC 5321 §4.5.3.2 server timeout'),
  })
  .prefault({});

const listenerFields = (starttlsPort: number, implicitPort: number, what: string) => ({
  enabled: z.boolean().default(true),
  host: host.default('0.0.0.0').describe(`Listen address of ${what}`),
  port: port.default(starttlsPort).describe(`${what} with STARTTLS`),
  tlsPort: port.default(implicitPort).describe(`${what} with implicit TLS`),
  publicHost: host
    .optional()
    .describe(
      'Name clients reach this service at (DNS SRV records, autoconfiguration); absent: smtp.hostname',
    ),
  publicPort: port
    .min(1)
    .optional()
    .describe('STARTTLS port clients reach (a load balancer may map it); absent: port'),
  publicTlsPort: port.min(1).optional().describe('Implicit-TLS port clients reach; absent: tlsPort'),
  maxConnections: z.number().int().min(1).default(500).describe('Connections open at once, all ports'),
  maxPreauthPerSource: z
    .number()
    .int()
    .min(1)
    .default(20)
    .describe(
      'Connections from one address (IPv6: one /64) not logged in yet; logged-in ones count only in maxConnections',
    ),
});

const ImapConfig = z
  .strictObject({
    ...listenerFields(1430, 9930, 'IMAP (143/993 in production)'),
    maxLineBytes: z.number().int().min(1024).default(8192).describe('Longest pre-login command line'),
    maxLiteralBytes: z.number().int().min(1024).default(16384).describe('Largest pre-login literal'),
    preauthTimeoutSeconds: z.number().int().min(5).default(60).describe('Time allowed to log in'),
    idleTimeoutSeconds: z
      .number()
      .int()
      .min(60)
      .default(1860)
      .describe('Idle limit after login (RFC 9051 §5.4: at least 30 minutes)'),
    maxSessionSeconds: z
      .number()
      .int()
      .min(60)
      .default(43200)
      .describe(
        'Longest piped session: the client logs in again, so a revoked right or a token that has run out stops being honoured',
      ),
  })
  .prefault({});

const SubmissionConfig = z
  .strictObject({
    ...listenerFields(5870, 4650, 'SMTP submission (587/465 in production)'),
    socketTimeoutSeconds: z.number().int().min(5).default(300).describe('Idle limit of a connection'),
    preauthTimeoutSeconds: z
      .number()
      .int()
      .min(5)
      .default(60)
      .describe('Time from connect until AUTH succeeded (TLS included); then 421 4.7.0 and close'),
  })
  .prefault({});

const SmtpConfig = z
  .strictObject({
    hostname: host.default('localhost').describe('Name in the greeting and in Received: headers'),
    maxMessageBytes: z
      .number()
      .int()
      .min(1024)
      .default(50 * 1024 * 1024)
      .describe('Largest message accepted, advertised with SIZE (RFC 1870)'),
    maxRecipients: z.number().int().min(1).default(100).describe('Recipients per transaction'),
    mx: MxConfig,
    submission: SubmissionConfig,
  })
  .prefault({});

const RedisConfig = z
  .strictObject({
    url: z
      .string()
      .min(1)
      .optional()
      .describe('redis:// or rediss:// URL of an external Redis; absent: the gateway runs its own'),
    passwordFile: filePath.optional().describe('File holding the Redis password (kept out of the URL)'),
    sentinels: z
      .array(Endpoint)
      .min(1)
      .optional()
      .describe(
        'Redis Sentinel addresses of an external Redis (instead of url): the primary is asked of them and followed across failovers',
      ),
    masterName: z
      .string()
      .min(1)
      .default('mssgw')
      .describe('With sentinels: the name the sentinels monitor the primary under (sentinel monitor NAME …)'),
    sentinelPasswordFile: filePath
      .optional()
      .describe("With sentinels: file holding the sentinels' own password (requirepass of sentinel.conf)"),
    sentinelUsername: z
      .string()
      .min(1)
      .optional()
      .describe("With sentinels: the sentinels' own ACL user (with sentinelPasswordFile)"),
    sentinelTls: z
      .boolean()
      .default(false)
      .describe(
        'With sentinels: TLS to the sentinels (server checked against redis.caFile, else the system CAs)',
      ),
    tls: z
      .boolean()
      .default(false)
      .describe(
        'With sentinels: TLS to the primary they name (with url: use rediss://); checked against redis.caFile, else the system CAs',
      ),
    caFile: filePath
      .optional()
      .describe(
        'With sentinels and TLS: PEM file of the authorities that issued the Redis and sentinel certificates',
      ),
    username: z
      .string()
      .min(1)
      .optional()
      .describe('With sentinels: ACL user on the primary (with passwordFile); with url it goes in the URL'),
    db: z
      .number()
      .int()
      .min(0)
      .max(15)
      .default(0)
      .describe(
        'With sentinels: database number on the primary; with url it goes in the URL (redis://host/3)',
      ),
    prefix: z
      .string()
      .regex(/^[A-Za-z0-9:_-]*$/)
      .default('mssgw:')
      .describe('Prefix of every key the gateway writes'),
    serverBinary: filePath.default('redis-server').describe('Embedded mode: redis-server program'),
  })
  .prefault({});

const StoreConfig = z
  .strictObject({
    lmtp: z
      .union([Endpoint, z.strictObject({ path: filePath.describe('Unix socket of the LMTP service') })])
      .optional()
      .describe('External Dovecot LMTP endpoint; absent (with imap): the gateway runs its own Dovecot'),
    imap: Endpoint.optional().describe('External Dovecot IMAP endpoint (plain, trusted network)'),
    masterUser: z.string().min(1).default('mssgw').describe('Dovecot master user the gateway logs in as'),
    masterPasswordFile: filePath
      .optional()
      .describe('File holding the master password; embedded mode generates one under the data dir'),
    dovecotBinary: filePath.default('dovecot').describe('Embedded mode: dovecot program'),
    mailUser: z.string().min(1).default('mail').describe('Embedded mode: system user owning the mail'),
    embeddedImapPort: z
      .number()
      .int()
      .min(1)
      .max(65535)
      .optional()
      .describe(
        'Embedded mode: loopback port of the embedded Dovecot IMAP service (absent: a free port at each start)',
      ),
  })
  .prefault({});

const DeliveryConfig = z
  .strictObject({
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(20)
      .describe('Parallel local deliveries (enough to keep up with 20 accepting connections)'),
    lmtpConnections: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(20)
      .describe('Persistent LMTP connections to the store at most (Postfix caches as many)'),
    lmtpIdleSeconds: z
      .number()
      .min(0.1)
      .default(30)
      .describe('An idle LMTP connection is closed after this long'),
    dsnFrom: z
      .string()
      .regex(/^[^\s@<>()",;]+@[^\s@<>()",;]+$/, 'a mailbox address, e.g. postmaster@op.mssante.fr')
      .optional()
      .describe(
        'From: address of delivery status notifications (DSN); absent: MAILER-DAEMON@<first of domains>',
      ),
    retryInitialSeconds: z
      .number()
      .min(0.1)
      .default(15)
      .describe('First retry delay after a temporary failure'),
    retryMaxSeconds: z.number().min(1).default(1800).describe('Longest delay between two retries'),
    maxAgeHours: z
      .number()
      .min(0.0001)
      .default(120)
      .describe('Give up on a message after this age (local and relay), then send a failure DSN'),
    delayNoticeHours: z
      .number()
      .min(0.0001)
      .default(4)
      .describe('Send one delay DSN when a recipient is still pending after this time'),
    delayNoticeByDefault: z
      .boolean()
      .default(true)
      .describe('Recipients without NOTIFY get delay notices (RFC 3461 §4.1 lets the MTA choose)'),
    lmtpTimeoutSeconds: z.number().min(1).default(60),
    lockSeconds: z
      .number()
      .min(1)
      .default(30)
      .describe('Queue job lock; a job of a killed process is taken up again after about twice this'),
    drainSeconds: z
      .number()
      .min(0)
      .default(30)
      .describe('On SIGTERM, deliveries in flight get this long to finish before they are handed back'),
    reconcileSeconds: z
      .number()
      .min(1)
      .default(300)
      .describe('How often the spool is compared with the queue (jobs lost by Redis are added again)'),
    handOffWaitEntries: z
      .number()
      .int()
      .min(0)
      .default(5000)
      .describe(
        'Destinations (message × local or relay domain) that wait in memory for a delivery slot, at most; past it they are queued in Redis (0: always queued)',
      ),
    handOffWaitBytes: z
      .number()
      .int()
      .min(0)
      .default(256 * 1024 * 1024)
      .describe(
        'Bytes of spooled messages that the destinations waiting in memory for a delivery slot may refer to, at most; past it they are queued in Redis',
      ),
  })
  .prefault({});

const RelayRoute = z.strictObject({
  host: host.describe('Host name or IP address of the remote MX'),
  port: port.default(25).describe('Its SMTP port'),
});

const RelayConfig = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Relay mail for other operators; off: such recipients wait in the queue'),
    concurrency: z.number().int().min(1).max(256).default(40).describe('Relay jobs worked at once'),
    maxConnectionsPerDestination: z
      .number()
      .int()
      .min(1)
      .max(64)
      .default(20)
      .describe(
        "Open connections to one recipient domain at most (per gateway process); Postfix's " +
          'default_destination_concurrency_limit is 20 too',
      ),
    maxMessagesPerConnection: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(100)
      .describe('Messages sent over one TLS connection (RSET between them) before it is closed; 1: no reuse'),
    maxConnectionAgeSeconds: z
      .number()
      .min(1)
      .max(3600)
      .default(300)
      .describe(
        "A connection open this long gets no new message and is closed (QUIT); Postfix's " +
          'smtp_connection_reuse_time_limit is 300 s too. Bounds how long a connection outlives a ' +
          'certificate or whitelist change it is not checked against',
      ),
    idleSeconds: z
      .number()
      .min(0)
      .max(3600)
      .default(10)
      .describe('Keep an idle connection this long for the next message to the same domain'),
    port: port.default(25).describe('SMTP port of MX hosts found in DNS'),
    trustRetryAttempts: z
      .number()
      .int()
      .min(1)
      .default(5)
      .describe(
        'Attempts refused for trust (certificate, whitelist) before the recipient fails: a whitelist ' +
          'refresh or an operator migration may fix it meanwhile',
      ),
    heloName: z
      .string()
      .regex(/^[^\s]+$/)
      .optional()
      .describe('EHLO name; default smtp.hostname'),
    connectTimeoutSeconds: z
      .number()
      .min(1)
      .default(30)
      .describe('Connect, greeting, EHLO, STARTTLS and TLS handshake together'),
    commandTimeoutSeconds: z
      .number()
      .min(1)
      .default(300)
      .describe('Wait for one reply (RFC 5321 §4.5.3.2 suggests 5 to 10 minutes)'),
    routes: z
      .record(z.string().min(1), z.array(RelayRoute).min(1))
      .default({})
      .describe('Static routes by recipient domain, tried in order; they override DNS (private links)'),
    dns: z
      .strictObject({
        servers: z
          .array(
            z
              .string()
              .regex(
                /^(\d{1,3}(\.\d{1,3}){3}(:\d{1,5})?|\[[0-9a-fA-F:]+\](:\d{1,5})?|[0-9a-fA-F:]+)$/,
                'an IP address, optionally with :port',
              ),
          )
          .default([])
          .describe('Name servers for MX lookups (IP or IP:port); empty: the system resolver'),
        timeoutSeconds: z.number().min(0.1).default(5).describe('Per MX query'),
        tries: z.number().int().min(1).default(2).describe('Attempts per name server'),
      })
      .prefault({}),
  })
  .prefault({});

/** A mirror's source: an `https://` URL (server verified against tls.caFiles) or a file path. */
const MirrorSource = z
  .string()
  .min(1)
  .refine((s) => !/^[a-z][a-z0-9+.-]*:\/\//i.test(s) || /^https:\/\//i.test(s), {
    message: 'give an https:// URL or a file path',
  });

const refreshSeconds = (seconds: number) =>
  z
    .number()
    .int()
    .min(10)
    .default(seconds)
    .describe('Seconds between two refreshes (one runner for all processes)');

const maxShrinkShare = z
  .number()
  .min(0)
  .max(1)
  .default(0.1)
  .describe('Refuse a new copy with more than this share fewer entries than the copy in service (1: never)');

const DirectoryConfig = z
  .strictObject({
    whitelist: z
      .strictObject({
        source: MirrorSource.optional().describe(
          'https:// URL or file of listeblanchemssante.xml; absent: whitelistFile',
        ),
        refreshSeconds: refreshSeconds(3600),
        maxShrinkShare,
        maxInvalidShare: z
          .number()
          .min(0)
          .max(1)
          .default(0.05)
          .describe(
            'Malformed Domaine entries are left out and reported; refuse the file when their share is above this',
          ),
      })
      .prefault({}),
    extraction: z
      .strictObject({
        source: MirrorSource.optional().describe(
          'https:// URL or file of Extraction_Correspondance_MSSante (ZIP or text); absent: not mirrored',
        ),
        refreshSeconds: refreshSeconds(86400),
        maxShrinkShare,
        maxInvalidShare: z
          .number()
          .min(0)
          .max(1)
          .default(0.001)
          .describe(
            'Refuse a copy whose share of unusable lines (bad address, type or column count) is above this',
          ),
      })
      .prefault({}),
    crls: z
      .array(
        z.strictObject({
          name: z
            .string()
            .regex(/^[a-z0-9][a-z0-9-]{0,39}$/)
            .describe('Short name: metric label, file <dataDir>/mirrors/crl/<name>.crl, mirror crl:<name>'),
          source: MirrorSource.describe('https:// URL or file of the CRL (DER or PEM)'),
          issuer: z
            .string()
            .min(3)
            .optional()
            .describe(
              'Subject DN of the authority (one of tls.caFiles) this CRL is for; without it, the issuer of the first copy accepted is pinned',
            ),
          refreshSeconds: refreshSeconds(3600),
        }),
      )
      .default([])
      .refine((list) => new Set(list.map((c) => c.name)).size === list.length, {
        message: 'CRL mirror names must be unique',
      })
      .describe('Revocation lists to mirror; each must be signed by an authority of tls.caFiles'),
    fetch: z
      .strictObject({
        timeoutSeconds: z.number().min(1).default(300).describe('Longest time one download may take'),
        maxBytes: z
          .number()
          .int()
          .min(1024)
          .default(512 * 1024 * 1024)
          .describe('Largest download accepted (the extraction ZIP is about 20 MB)'),
        clientCertificate: z
          .boolean()
          .default(true)
          .describe('Present our certificate (tls.certFile) to https:// sources'),
      })
      .prefault({}),
    pollSeconds: z
      .number()
      .min(1)
      .default(30)
      .describe('How often each process checks for a new copy, besides the change notification'),
  })
  .prefault({});

/** Lifecycle of mailboxes (MSSANTE.md "Lifecycle and indicators"; src/lifecycle). */
const LifecycleConfig = z
  .strictObject({
    enabled: z
      .boolean()
      .default(true)
      .describe('Run the daily lifecycle job (warnings, unpublication of inactive BALs, expired rights)'),
    inactivityDays: z
      .number()
      .int()
      .min(1)
      .max(3650)
      .default(45)
      .describe('Days without use (login or sending) after which a published BAL is unpublished'),
    warningLeadDays: z
      .number()
      .int()
      .min(1)
      .default(15)
      .describe('Days of notice: the warning goes out this many days before the unpublication'),
    runAt: z
      .string()
      .regex(/^(?:[01][0-9]|2[0-3]):[0-5][0-9]$/, { message: 'give a time of day as HH:MM (24 h)' })
      .default('03:15')
      .describe('Time of day (HH:MM in timeZone) of the daily run; one runner for all processes'),
    timeZone: z
      .string()
      .min(1)
      .refine((tz) => isTimeZone(tz), { message: 'give an IANA time zone such as Europe/Paris' })
      .default('Europe/Paris')
      .describe('Time zone of runAt, of the dates in warnings and of the days of the indicators'),
    deletedMailRetentionDays: z
      .number()
      .int()
      .min(0)
      .default(90)
      .describe('Days the mail of a deleted BAL is kept before it is purged from the store'),
    indicatorsRetentionDays: z
      .number()
      .int()
      .min(400)
      .default(430)
      .describe('Days the daily per-BAL indicators are kept in Redis (at least 13 months)'),
    maxSoftwarePerDay: z
      .number()
      .int()
      .min(1)
      .max(1000)
      .default(20)
      .describe('Distinct X-MSS-NIL values counted per BAL and day; further ones count as "(other)"'),
  })
  .superRefine((c, ctx) => {
    if (c.warningLeadDays >= c.inactivityDays) {
      ctx.addIssue({
        code: 'custom',
        path: ['warningLeadDays'],
        message: `must be less than inactivityDays (${c.inactivityDays})`,
      });
    }
  })
  .prefault({});

function isTimeZone(tz: string): boolean {
  // The list first: a DateTimeFormat costs ICU's locale data, 20 to 180 ms of every `mssgw` command
  // on a busy machine; it still judges the names the list leaves out (aliases, other letter cases).
  if (Intl.supportedValuesOf('timeZone').includes(tz)) return true;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const HttpListener = (defaultPort: number) =>
  z
    .strictObject({
      enabled: z.boolean().default(true),
      host: host.default('127.0.0.1'),
      port: port.default(defaultPort),
    })
    .prefault({});

const TokenIssuer = z.strictObject({
  name: z
    .string()
    .min(1)
    .describe('Label in logs and metrics, e.g. psc-production, psc-sandbox, development'),
  issuer: z.string().min(1).describe('Expected `iss` claim (Pro Santé Connect realm URL)'),
  jwksUrl: z.string().url().optional().describe("Issuer's JWKS (realm's protocol/openid-connect/certs)"),
  jwksFile: filePath.optional().describe('Local JWKS file instead of jwksUrl (development issuer)'),
  audience: z.array(z.string().min(1)).optional().describe('Accepted `aud` values; absent: not checked'),
  authorizedParty: z
    .array(z.string().min(1))
    .optional()
    .describe('Accepted `azp` values; absent: not checked'),
  nationalIdClaim: z
    .string()
    .min(1)
    .default('SubjectNameID')
    .describe("Claim holding the person's national id (8+RPPS or 0+ADELI)"),
  development: z.boolean().default(false).describe('A development issuer: refused in production mode'),
});

const AuthConfig = z
  .strictObject({
    issuers: z
      .array(TokenIssuer)
      .default([])
      .describe('Trusted token issuers; development mode adds the dev issuer of pkiDir'),
    clockSkewSeconds: z.number().int().min(0).max(300).default(30).describe('Tolerance on exp/nbf/iat'),
    jwksCacheSeconds: z.number().int().min(10).default(600).describe('How long a fetched JWKS is trusted'),
    passwordTypes: z
      .array(z.enum(['PER', 'ORG', 'APP', 'CAB']))
      .default([])
      .describe('Mailbox types that may use PLAIN/LOGIN with an operator-managed secret (never before TLS)'),
    maxFailuresPerAddress: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe(
        'Failures on one mailbox from one source before that source is locked out of it; from all sources, before each attempt on it is slowed (never refused)',
      ),
    maxFailuresPerSource: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe('Failures per client IP (IPv6: per /64) before backoff of that source'),
    failureWindowSeconds: z.number().int().min(10).default(900),
    lockoutSeconds: z.number().int().min(1).default(300).describe('Longest backoff once a limit is reached'),
    mailboxDelayMaxMs: z
      .number()
      .int()
      .min(0)
      .max(10_000)
      .default(2000)
      .describe('Longest delay before checking a credential on a mailbox many sources failed on'),
  })
  .prefault({});

const AdminConfig = z
  .strictObject({
    enabled: z.boolean().default(true),
    host: host
      .default('127.0.0.1')
      .describe('Admin API listen address (loopback only unless a token is set)'),
    port: port.default(9465),
    tokenFile: filePath.optional().describe('File holding the bearer token the admin API requires'),
  })
  .prefault({});

/**
 * The professionals' portal (issue #13, src/portal): its own HTTPS listener with our certificate,
 * login with Pro Santé Connect (OpenID Connect authorization code + PKCE), sessions in Redis.
 */
const PortalConfig = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe("Serve the professionals' portal and the mail clients' autoconfiguration documents"),
    host: host.default('127.0.0.1').describe('Listen address of the portal (HTTPS)'),
    port: port.default(9443).describe("Portal HTTPS port (443 behind the operator's name in production)"),
    publicUrl: z
      .string()
      .url()
      .refine((u) => /^https:\/\//i.test(u), { message: 'give an https:// URL' })
      .optional()
      .describe('https:// URL people reach the portal at; absent: https://localhost:<bound port>'),
    sessionIdleMinutes: z
      .number()
      .int()
      .min(1)
      .max(720)
      .default(30)
      .describe('A session unused this long ends (idle expiry)'),
    sessionMaxHours: z
      .number()
      .min(0.05)
      .max(24)
      .default(8)
      .describe('A session ends this long after the login, used or not (absolute expiry)'),
    oidc: z
      .strictObject({
        issuer: z
          .string()
          .url()
          .optional()
          .describe(
            'Pro Santé Connect issuer URL (discovery at /.well-known/openid-configuration); absent in development: the local development provider',
          ),
        clientId: z.string().min(1).default('mssgw-portal').describe('Our client id at the issuer'),
        clientSecretFile: filePath
          .optional()
          .describe('File holding the client secret (client_secret_basic); required in production'),
        redirectUri: z
          .string()
          .url()
          .optional()
          .describe('Registered redirect URI; absent: <publicUrl>/connexion/retour'),
        scopes: z
          .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/))
          .default(['openid', 'scope_all'])
          .refine((s) => s.includes('openid'), { message: 'must include openid' })
          .describe('Scopes asked for at login'),
        nationalIdClaim: z
          .string()
          .min(1)
          .default('SubjectNameID')
          .describe("Claim of the ID token or userinfo holding the person's national id (as for XOAUTH2)"),
        acrValues: z
          .string()
          .min(1)
          .optional()
          .describe('acr_values asked for (e.g. eidas1 at Pro Santé Connect); absent: not sent'),
      })
      .prefault({}),
    devProvider: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Run the local development OpenID provider (a few development people) and log in with it; refused in production',
          ),
        host: host
          .default('127.0.0.1')
          .describe('Listen address of the development provider (HTTP, loopback)'),
        port: port.default(9444).describe('Port of the development provider'),
      })
      .prefault({}),
  })
  .prefault({});

const httpsUrl = z
  .string()
  .url()
  .refine((u) => /^https:\/\//i.test(u), { message: 'give an https:// URL' });

/**
 * Publication of our mailboxes in the national directory (MSSANTE.md "Publication (write)";
 * src/publication). The agency's FHIR write interface is a draft: every URL and system is a setting.
 * The client certificate is ours (tls.certFile/keyFile); the server is verified against tls.caFiles.
 */
const PublicationConfig = z
  .strictObject({
    enabled: z
      .boolean()
      .default(false)
      .describe('Publish our mailboxes in the national directory; off (the default) sends nothing anywhere'),
    fhir: z
      .strictObject({
        baseUrl: httpsUrl
          .optional()
          .describe("https:// base URL of the agency's FHIR write API; required when publication is enabled"),
        personResource: z
          .string()
          .regex(/^[A-Z][A-Za-z]+$/)
          .default('Practitioner')
          .describe('FHIR resource carrying the mailbox of a PER BAL'),
        personIdentifierSystem: z
          .string()
          .min(1)
          .default('urn:oid:1.2.250.1.71.4.2.1')
          .describe('Identifier system of a PER owner (national person id: 8+RPPS or 0+ADELI)'),
        structureResource: z
          .string()
          .regex(/^[A-Z][A-Za-z]+$/)
          .default('Organization')
          .describe('FHIR resource carrying the mailbox of an ORG, APP or CAB BAL'),
        structureIdentifierSystem: z
          .string()
          .min(1)
          .default('urn:oid:1.2.250.1.71.4.2.2')
          .describe(
            'Identifier system of an ORG/APP/CAB owner (national structure id: type digit + FINESS, SIRET...)',
          ),
        metadataExtensionUrl: z
          .string()
          .min(1)
          .default(
            'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata',
          )
          .describe(
            'URL of the mailbox metadata extension (type, description, service, responsible, listeRouge)',
          ),
        emailTypeExtensionUrl: z
          .string()
          .min(1)
          .default('https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type')
          .describe('URL of the extension marking the telecom as an MSSanté address'),
        emailTypeSystem: z
          .string()
          .min(1)
          .default('https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie')
          .describe('Code system of the email type (code MSSANTE)'),
        balTypeSystem: z
          .string()
          .min(1)
          .default('https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL')
          .describe('Code system of the mailbox type (PER, ORG, APP, CAB)'),
      })
      .prefault({})
      .describe('The FHIR PATCH interface (draft): where, and which resources and systems'),
    timeoutSeconds: z
      .number()
      .min(1)
      .max(300)
      .default(30)
      .describe('Longest time one directory call may take'),
    concurrency: z
      .number()
      .int()
      .min(1)
      .max(32)
      .default(2)
      .describe('Mailboxes published at once per process'),
    maxCallsPerSecond: z
      .number()
      .int()
      .min(1)
      .default(10)
      .describe('Directory calls per second at most, all processes together'),
    retryInitialSeconds: z
      .number()
      .min(0.01)
      .default(30)
      .describe('First retry delay after a temporary failure (network, 5xx); doubled each attempt'),
    retryMaxSeconds: z.number().min(0.01).default(3600).describe('Longest delay between two retries'),
    maxAttempts: z
      .number()
      .int()
      .min(1)
      .max(100)
      .default(12)
      .describe('Attempts of one change before the mailbox is marked failed'),
    devDirectory: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe(
            'Development only: run a local stand-in of the national directory (FHIR PATCH and look-ups) and publish to it',
          ),
        host: z.string().min(1).default('127.0.0.1').describe('Address of the stand-in (loopback)'),
        port: z
          .number()
          .int()
          .min(0)
          .max(65535)
          .default(9466)
          .describe('HTTPS port of the stand-in (0: any)'),
      })
      .prefault({})
      .describe('A local stand-in of the national directory, so publication can be tried without the agency'),
  })
  .superRefine((c, ctx) => {
    if (c.enabled && c.fhir.baseUrl === undefined && !c.devDirectory.enabled) {
      ctx.addIssue({
        code: 'custom',
        path: ['fhir', 'baseUrl'],
        message:
          'required when publication.enabled is true (or publication.devDirectory.enabled in development)',
      });
    }
    if (c.devDirectory.enabled && c.fhir.baseUrl !== undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['devDirectory', 'enabled'],
        message: 'the stand-in replaces publication.fhir.baseUrl: remove one of them',
      });
    }
  })
  .prefault({});

export const ConfigSchema = z.strictObject({
  mode: z
    .enum(['development', 'production'])
    .default('development')
    .describe(
      'production refuses test authorities, development PKI files, development token issuers and an unauthenticated non-loopback admin API',
    ),
  dataDir: filePath.default('./var').describe('Spool, journal, embedded Redis and Dovecot state'),
  journal: z
    .strictObject({
      retentionDays: z
        .number()
        .int()
        .min(90)
        .default(365)
        .describe(
          'Days of audit journal kept (<dataDir>/journal, one file per UTC day); older files are deleted. It holds personal data: keep it no longer than your traceability duty (one year by default); at least 90, the portal shows 90 days of use',
        ),
    })
    .prefault({}),
  node: z
    .strictObject({
      id: z
        .string()
        .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'letters, digits, ".", "_" and "-", at most 63')
        .default(hostname())
        .describe(
          'This node: it owns the spool under dataDir and works only the delivery jobs of that spool. Unique per process sharing a Redis (two on one machine set different ones); keep it across restarts',
        ),
    })
    .prefault({}),
  domains: z
    .array(z.string().min(1))
    .min(1)
    .default(['op.mssante.test'])
    .describe('Mail domains whose mailboxes this gateway operates'),
  pkiDir: filePath
    .default('certs-dev')
    .describe('Development PKI folder, generated at start when absent (development mode only)'),
  whitelistFile: filePath
    .default('certs-dev/whitelist.xml')
    .describe('National whitelist (listeblanchemssante.xml)'),
  directory: DirectoryConfig.describe(
    'Mirrors of the national directory: whitelist, BAL extraction, CRLs (refreshed, validated, swapped atomically)',
  ),
  tls: TlsConfig,
  smtp: SmtpConfig,
  redis: RedisConfig,
  store: StoreConfig,
  delivery: DeliveryConfig,
  relay: RelayConfig,
  metrics: HttpListener(9464),
  admin: AdminConfig,
  auth: AuthConfig,
  imap: ImapConfig,
  publication: PublicationConfig.describe(
    'Publication of our mailboxes in the national directory (FHIR PATCH, mutual TLS with tls.certFile)',
  ),
  portal: PortalConfig.describe(
    "The professionals' portal: Pro Santé Connect login, addresses, delegations, warnings, client autoconfiguration",
  ),
  lifecycle: LifecycleConfig.describe(
    'Mailbox lifecycle: inactivity warnings and unpublication, expired rights, deleted mail, indicators',
  ),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
});

/** Rules that span several keys; each issue names the key to fix. */
export const ConfigSchemaChecked = ConfigSchema.superRefine((c, ctx) => {
  const { imap, lmtp, masterPasswordFile } = c.store;
  if ((imap === undefined) !== (lmtp === undefined)) {
    ctx.addIssue({
      code: 'custom',
      path: ['store', imap === undefined ? 'imap' : 'lmtp'],
      message: 'set both store.imap and store.lmtp for an external store, or neither for the embedded one',
    });
  }
  if (imap && c.store.embeddedImapPort !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['store', 'embeddedImapPort'],
      message: 'applies to the embedded store only: remove it, or remove store.imap and store.lmtp',
    });
  }
  if (imap && lmtp && !masterPasswordFile) {
    ctx.addIssue({
      code: 'custom',
      path: ['store', 'masterPasswordFile'],
      message: 'required with an external store',
    });
  }
  if (c.redis.sentinels === undefined) {
    const sentinelOnly = [
      ['sentinelUsername', c.redis.sentinelUsername !== undefined],
      ['sentinelTls', c.redis.sentinelTls],
      ['tls', c.redis.tls],
      ['caFile', c.redis.caFile !== undefined],
      ['username', c.redis.username !== undefined],
      ['db', c.redis.db !== 0],
    ] as const;
    for (const [key, set] of sentinelOnly) {
      if (!set) continue;
      ctx.addIssue({
        code: 'custom',
        path: ['redis', key],
        message:
          'applies with redis.sentinels only; with redis.url, say it in the URL (rediss://user@host/db)',
      });
    }
  }
  if (c.redis.url !== undefined && c.redis.sentinels !== undefined) {
    ctx.addIssue({
      code: 'custom',
      path: ['redis', 'sentinels'],
      message: 'set either redis.url (one server) or redis.sentinels (Redis Sentinel), not both',
    });
  }
  const loopback = ['::1', 'localhost'].includes(c.admin.host) || /^127\.\d+\.\d+\.\d+$/.test(c.admin.host);
  if (c.admin.enabled && !loopback && !c.admin.tokenFile) {
    ctx.addIssue({
      code: 'custom',
      path: ['admin', 'tokenFile'],
      message: `the admin API listens on ${c.admin.host} (not loopback): a bearer token file is required`,
    });
  }
  for (const issue of portClashes(c)) ctx.addIssue({ code: 'custom', ...issue });
  if (c.mode === 'production') {
    for (const issue of productionRefusals(c)) ctx.addIssue({ code: 'custom', ...issue });
  }
});

/**
 * Two enabled listeners on one port of one address (a wildcard address overlaps every other): the
 * second could not bind, so the configuration is refused up front, naming both keys. Port 0 (any
 * free port) never clashes.
 */
function portClashes(c: z.output<typeof ConfigSchema>): Array<{ path: string[]; message: string }> {
  const listeners: Array<{ key: string; enabled: boolean; host: string; port: number }> = [
    { key: 'smtp.mx.port', enabled: c.smtp.mx.enabled, host: c.smtp.mx.host, port: c.smtp.mx.port },
    ...(['port', 'tlsPort'] as const).flatMap((k) => [
      { key: `smtp.submission.${k}`, ...c.smtp.submission, port: c.smtp.submission[k] },
      { key: `imap.${k}`, ...c.imap, port: c.imap[k] },
    ]),
    { key: 'metrics.port', ...c.metrics },
    { key: 'admin.port', ...c.admin },
    { key: 'portal.port', ...c.portal },
    {
      key: 'portal.devProvider.port',
      ...c.portal.devProvider,
      enabled: c.portal.enabled && c.portal.devProvider.enabled,
    },
    {
      key: 'publication.devDirectory.port',
      ...c.publication.devDirectory,
      enabled: c.publication.devDirectory.enabled,
    },
    // The embedded Dovecot listens on loopback only.
    {
      key: 'store.embeddedImapPort',
      enabled: c.store.imap === undefined,
      host: '127.0.0.1',
      port: c.store.embeddedImapPort ?? 0,
    },
  ];
  const wildcard = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  const issues: Array<{ path: string[]; message: string }> = [];
  const open = listeners.filter((l) => l.enabled && l.port !== 0);
  open.forEach((l, i) => {
    const other = open
      .slice(0, i)
      .find((o) => o.port === l.port && (o.host === l.host || wildcard(o.host) || wildcard(l.host)));
    if (other === undefined) return;
    issues.push({
      path: l.key.split('.'),
      message: `port ${l.port} is also ${other.key} (${other.host}): two listeners cannot share a port`,
    });
  });
  return issues;
}

/** The repository's development PKI folder (ARCHITECTURE.md §8: never used in production). */
const DEV_PKI_FOLDER = 'certs-dev';

/** True when `file` is `dir` or lies under it (both resolved against the same working directory). */
function inside(dir: string, file: string): boolean {
  const rel = path.relative(path.resolve(dir), path.resolve(file));
  return rel === '' || (!rel.startsWith('..') && !path.isAbsolute(rel));
}

/**
 * What production mode refuses before anything starts, each with the key to fix. The certificates
 * themselves are checked again once loaded (pki/ assertProductionTrust: no TEST authority); here the
 * settings that can only mean development: files of the development PKI (pkiDir, certs-dev) and
 * development token issuers. PLAIN/LOGIN before TLS needs no rule: no setting can allow it.
 */
function productionRefusals(c: Config): Array<{ path: PropertyKey[]; message: string }> {
  const issues: Array<{ path: PropertyKey[]; message: string }> = [];
  const isDevPki = (file: string) =>
    !/^https:\/\//i.test(file) && (inside(c.pkiDir, file) || file.split(/[\\/]/).includes(DEV_PKI_FOLDER));
  const wl = c.directory.whitelist.source;
  const files: Array<[PropertyKey[], string]> = [
    [['tls', 'certFile'], c.tls.certFile],
    [['tls', 'keyFile'], c.tls.keyFile],
    ...c.tls.chainFiles.map((f, i): [PropertyKey[], string] => [['tls', 'chainFiles', i], f]),
    ...c.tls.caFiles.map((f, i): [PropertyKey[], string] => [['tls', 'caFiles', i], f]),
    ...c.tls.crlFiles.map((f, i): [PropertyKey[], string] => [['tls', 'crlFiles', i], f]),
    [['whitelistFile'], c.whitelistFile],
    ...(wl === undefined
      ? []
      : [[['directory', 'whitelist', 'source'], wl] satisfies [PropertyKey[], string]]),
    ...c.directory.crls.map((m, i): [PropertyKey[], string] => [
      ['directory', 'crls', i, 'source'],
      m.source,
    ]),
  ];
  for (const [key, file] of files) {
    if (isDevPki(file)) {
      issues.push({
        path: key,
        message: `mode is production but ${file} is a development PKI file (inside pkiDir or a ${DEV_PKI_FOLDER} folder): point it at the operator's IGC-Santé material`,
      });
    }
  }
  issues.push(...revocationRefusals(c));
  if (c.publication.devDirectory.enabled) {
    issues.push({
      path: ['publication', 'devDirectory', 'enabled'],
      message:
        "mode is production but the development stand-in of the national directory is enabled: set publication.fhir.baseUrl to the agency's service",
    });
  }
  c.auth.issuers.forEach((issuer, i) => {
    const at = (k: string) => ['auth', 'issuers', i, k];
    // A token minted for another client of the same realm would otherwise open our mailboxes.
    if (issuer.audience === undefined && issuer.authorizedParty === undefined) {
      issues.push({
        path: at('audience'),
        message: `mode is production but token issuer ${issuer.name} checks neither \`aud\` nor \`azp\`: set auth.issuers.${i}.audience or auth.issuers.${i}.authorizedParty to the operator's client ids`,
      });
    }
    if (issuer.development) {
      issues.push({
        path: at('development'),
        message: `mode is production but token issuer ${issuer.name} is a development issuer: remove it from auth.issuers`,
      });
    }
    // RFC 6761 §6.4: `.invalid` never resolves; the development issuer's URL uses it.
    if (/^https?:\/\/[^/]*\.invalid(?::\d+)?(?:\/|$)/i.test(issuer.issuer)) {
      issues.push({
        path: at('issuer'),
        message: `mode is production but ${issuer.issuer} is the development token issuer: configure Pro Santé Connect`,
      });
    }
    if (issuer.jwksFile !== undefined && isDevPki(issuer.jwksFile)) {
      issues.push({
        path: at('jwksFile'),
        message: `mode is production but ${issuer.jwksFile} holds the development issuer's keys: use the issuer's jwksUrl`,
      });
    }
  });
  issues.push(...portalRefusals(c));
  return issues;
}

/**
 * Revocation must be checked (MSSANTE.md "Certificates"): production needs a CRL source for each
 * trusted authority. Which authority a CRL file is for is read from the file at start (app/trust.ts);
 * here, a configuration with no source at all, and mirrors that do not say their authority (without
 * `issuer`, it is known only once a first copy arrives, too late to refuse the start).
 */
function revocationRefusals(c: Config): Array<{ path: PropertyKey[]; message: string }> {
  const issues: Array<{ path: PropertyKey[]; message: string }> = [];
  if (c.tls.crlFiles.length === 0 && c.directory.crls.length === 0) {
    issues.push({
      path: ['tls', 'crlFiles'],
      message:
        'mode is production but no revocation list is configured: give each authority of tls.caFiles a CRL file in tls.crlFiles or a mirror in directory.crls',
    });
  }
  c.directory.crls.forEach((mirror, i) => {
    if (mirror.issuer === undefined) {
      issues.push({
        path: ['directory', 'crls', i, 'issuer'],
        message: `mode is production but CRL mirror ${mirror.name} does not name its authority: set the subject DN of the authority (one of tls.caFiles) it is for`,
      });
    }
  });
  return issues;
}

/** The portal in production: a real issuer, its secret, never the development provider. */
function portalRefusals(c: Config): Array<{ path: PropertyKey[]; message: string }> {
  const p = c.portal;
  const issues: Array<{ path: PropertyKey[]; message: string }> = [];
  if (p.devProvider.enabled) {
    issues.push({
      path: ['portal', 'devProvider', 'enabled'],
      message: 'mode is production but the development OpenID provider is on: configure Pro Santé Connect',
    });
  }
  if (!p.enabled) return issues;
  const issuer = p.oidc.issuer;
  if (issuer === undefined) {
    issues.push({
      path: ['portal', 'oidc', 'issuer'],
      message: 'required in production (Pro Santé Connect)',
    });
  } else if (
    !/^https:\/\//i.test(issuer) ||
    /^https:\/\/(localhost|127\.|\[::1\]|[^/]*\.invalid)/i.test(issuer)
  ) {
    issues.push({
      path: ['portal', 'oidc', 'issuer'],
      message: `mode is production but ${issuer} is not a public https:// issuer: configure Pro Santé Connect`,
    });
  }
  if (p.oidc.clientSecretFile === undefined) {
    issues.push({ path: ['portal', 'oidc', 'clientSecretFile'], message: 'required in production' });
  }
  if (p.publicUrl === undefined) {
    issues.push({ path: ['portal', 'publicUrl'], message: 'required in production (the URL people reach)' });
  }
  return issues;
}

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
