import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import {
  GatewayAuthenticator,
  JwtTokenVerifier,
  type SecretStore,
  type TokenVerifier,
} from '../../src/auth/index.js';
import { systemClock } from '../../src/shared/index.js';
import { ConfigSchema, type Config } from '../../src/config/index.js';
import { FileAuditJournal, createLogger } from '../../src/observability/index.js';
import { BalRegistry } from '../../src/registry/index.js';
import { TEST_DOMAINS, storeProvisioner } from './admin-harness.js';
import { startTestIssuer, type TestIssuer } from './auth-issuer.js';
import { devTrust } from './auth-tls.js';
import { journalEvents } from './journal.js';

/**
 * The authenticator as the composition root builds it, on real parts: the run's Redis (unique
 * prefix), a BalRegistry provisioning in the run's Dovecot, a file journal, the development PKI's
 * authorities and a real HTTP issuer with its JWKS. `verifyCalls` counts credential checks.
 */
export interface AuthHarness {
  readonly authenticator: GatewayAuthenticator;
  readonly registry: BalRegistry;
  readonly issuer: TestIssuer;
  readonly secrets: SecretStore;
  readonly verifyCalls: () => number;
  /** `auth.*` events of the journal, oldest first. */
  authEvents(): Array<Record<string, unknown>>;
  /** Everything the authenticator logged, raw. */
  logs(): string;
  close(): Promise<void>;
}

export async function startAuthHarness(auth: Partial<Config['auth']> = {}): Promise<AuthHarness> {
  const prefix = `test:${randomUUID()}:`;
  const dataDir = path.join(inject('scratchDir'), `auth-${randomUUID().slice(0, 8)}`);
  mkdirSync(path.join(dataDir, 'journal'), { recursive: true });
  const redis = new Redis(inject('redisUrl'));
  const journal = new FileAuditJournal({ dir: path.join(dataDir, 'journal'), clock: systemClock });
  const registry = new BalRegistry({
    redis,
    prefix,
    domains: TEST_DOMAINS,
    clock: systemClock,
    journal,
    provisioner: storeProvisioner(),
  });
  const issuer = await startTestIssuer();
  const config = { ...ConfigSchema.parse({}).auth, ...auth };
  const jwt = new JwtTokenVerifier({
    issuers: [
      {
        name: 'psc-test',
        issuer: issuer.issuer,
        jwksUrl: issuer.jwksUrl,
        nationalIdClaim: 'SubjectNameID',
        development: false,
      },
    ],
    clockSkewSeconds: config.clockSkewSeconds,
    jwksCacheSeconds: config.jwksCacheSeconds,
    // The test issuer serves http, which production refuses.
    mode: 'development',
    clock: systemClock,
  });
  let calls = 0;
  const verifier: TokenVerifier = {
    verify: (token) => {
      calls += 1;
      return jwt.verify(token);
    },
    openidConfigurationUrl: (name) => jwt.openidConfigurationUrl(name),
  };
  let logText = '';
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logText += chunk.toString('utf8');
      done();
    },
  });
  const pkiDir = inject('pkiDir');
  const authenticator = new GatewayAuthenticator({
    config: { ...config, mode: 'production' },
    registry,
    redis,
    prefix,
    authorities: () => devTrust(pkiDir).authorities,
    journal,
    logger: createLogger({ level: 'info' }, sink),
    clock: systemClock,
    verifier,
  });
  return {
    authenticator,
    registry,
    issuer,
    secrets: authenticator.secrets,
    verifyCalls: () => calls,
    authEvents: () => journalEvents(dataDir).filter((e) => String(e.event).startsWith('auth.')),
    logs: () => logText,
    close: async () => {
      await issuer.close();
      journal.close();
      redis.disconnect();
    },
  };
}
