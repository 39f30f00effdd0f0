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
    socketTimeoutSeconds: z.number().int().min(5).default(300).describe('RFC 5321 §4.5.3.2 server timeout'),
  })
  .prefault({});

const listenerFields = (starttlsPort: number, implicitPort: number, what: string) => ({
  enabled: z.boolean().default(true),
  host: host.default('0.0.0.0').describe(`Listen address of ${what}`),
  port: port.default(starttlsPort).describe(`${what} with STARTTLS`),
  tlsPort: port.default(implicitPort).describe(`${what} with implicit TLS`),
  maxConnections: z.number().int().min(1).default(500),
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
    socketTimeoutSeconds: z.number().int().min(5).default(300),
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
  })
  .prefault({});

const DeliveryConfig = z
  .strictObject({
    concurrency: z.number().int().min(1).max(64).default(4).describe('Parallel LMTP deliveries'),
    retryInitialSeconds: z
      .number()
      .min(0.1)
      .default(15)
      .describe('First retry delay after a temporary failure'),
    retryMaxSeconds: z.number().min(1).default(1800).describe('Longest delay between two retries'),
    maxAgeHours: z.number().min(0.01).default(120).describe('Give up on a spooled message after this age'),
    lmtpTimeoutSeconds: z.number().min(1).default(60),
  })
  .prefault({});

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
      .describe('Failures per mailbox before backoff'),
    maxFailuresPerSource: z
      .number()
      .int()
      .min(1)
      .default(30)
      .describe('Failures per client IP before backoff'),
    failureWindowSeconds: z.number().int().min(10).default(900),
    lockoutSeconds: z.number().int().min(1).default(300).describe('Longest backoff once a limit is reached'),
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

export const ConfigSchema = z.strictObject({
  mode: z
    .enum(['development', 'production'])
    .default('development')
    .describe('production refuses development certificates and test authorities'),
  dataDir: filePath.default('./var').describe('Spool, journal, embedded Redis and Dovecot state'),
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
  tls: TlsConfig,
  smtp: SmtpConfig,
  redis: RedisConfig,
  store: StoreConfig,
  delivery: DeliveryConfig,
  metrics: HttpListener(9464),
  admin: AdminConfig,
  auth: AuthConfig,
  imap: ImapConfig,
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
  if (imap && lmtp && !masterPasswordFile) {
    ctx.addIssue({
      code: 'custom',
      path: ['store', 'masterPasswordFile'],
      message: 'required with an external store',
    });
  }
  const loopback = ['127.0.0.1', '::1', 'localhost'].includes(c.admin.host);
  if (c.admin.enabled && !loopback && !c.admin.tokenFile) {
    ctx.addIssue({
      code: 'custom',
      path: ['admin', 'tokenFile'],
      message: `the admin API listens on ${c.admin.host} (not loopback): a bearer token file is required`,
    });
  }
});

export type Config = z.infer<typeof ConfigSchema>;
export type ConfigInput = z.input<typeof ConfigSchema>;
