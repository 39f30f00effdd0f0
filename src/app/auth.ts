import {
  GatewayAuthenticator,
  JwtTokenVerifier,
  SessionWatch,
  effectiveIssuers,
  ensureDevIssuer,
} from '../auth/index.js';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import type { LifecycleEvents } from '../lifecycle/index.js';
import { type AuditJournal, type Logger, type Metrics, reportErrors } from '../observability/index.js';
import type { BalRegistry } from '../registry/index.js';
import type { Backends } from './backends.js';
import type { TrustPart } from './trust.js';

export interface AuthPartDeps {
  readonly config: Config;
  readonly backends: Backends;
  readonly registry: BalRegistry;
  /** Told of every successful login (indicators, return of a mailbox). */
  readonly lifecycle: LifecycleEvents;
  readonly trust: TrustPart;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
}

/** Logins of SMTP submission and IMAP: tokens (Pro Santé Connect), certificates, app passwords. */
export async function buildAuthenticator(d: AuthPartDeps): Promise<GatewayAuthenticator> {
  const { config, registry, metrics } = d;
  if (config.mode === 'development') await ensureDevIssuer(config.pkiDir);
  const verifier = new JwtTokenVerifier({
    issuers: effectiveIssuers(config),
    clockSkewSeconds: config.auth.clockSkewSeconds,
    jwksCacheSeconds: config.auth.jwksCacheSeconds,
    mode: config.mode,
    clock: d.clock,
    onJwksFetch: (issuer, outcome) => metrics.jwksFetches.inc({ issuer, outcome }),
  });
  return new GatewayAuthenticator({
    config: { ...config.auth, mode: config.mode },
    registry: {
      get: (a) => registry.get(a),
      grants: (a) => registry.grants(a),
      balsForPerson: (id, now) => registry.balsForPerson(id, now),
      balsForCertificate: (dn, now) => registry.balsForCertificate(dn, now),
      recordActivity: async (address, channel, at) => {
        const recorded = await registry.recordActivity(address, channel, at);
        d.lifecycle.onActivity(address, channel, at);
        return recorded;
      },
    },
    redis: d.backends.redis,
    prefix: config.redis.prefix,
    authorities: () => d.trust.current().authorities,
    journal: d.journal,
    logger: d.logger.child({ component: 'auth' }),
    clock: d.clock,
    verifier,
    observer: {
      attempt: (labels) => metrics.authAttempts.inc(labels),
      lockout: (scope) => metrics.authLockouts.inc({ scope }),
    },
  });
}

/**
 * Open IMAP and submission sessions, re-checked with the login's own rule whenever the registry
 * announces a change of rights on their mailbox (on any node) or a right they use expires.
 */
export async function startSessionWatch(
  d: Pick<AuthPartDeps, 'backends' | 'registry' | 'journal' | 'logger' | 'clock'> & {
    readonly authenticator: GatewayAuthenticator;
  },
): Promise<SessionWatch> {
  const subscriber = d.backends.redis.duplicate({ connectionName: 'mssgw-sessions' });
  reportErrors(subscriber, d.logger, { client: 'sessions' });
  const sessions = new SessionWatch({
    subscriber,
    channel: d.registry.accessChannel,
    reauthorise: (access) => d.authenticator.reauthorise(access),
    journal: d.journal,
    logger: d.logger.child({ component: 'sessions' }),
    clock: d.clock,
  });
  await sessions.start();
  return sessions;
}
