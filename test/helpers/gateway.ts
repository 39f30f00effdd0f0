import { randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { inject } from 'vitest';
import { Gateway } from '../../src/app/index.js';
import { loadConfig, type Config } from '../../src/config/index.js';
import { createLogger } from '../../src/observability/index.js';
import { devPkiSettings } from '../../src/pki/index.js';

export interface TestGatewayOptions {
  /** Extra configuration merged over the test defaults. */
  readonly overrides?: Record<string, unknown>;
  /** Reuse a data directory (restart after a crash). */
  readonly dataDir?: string;
  readonly prefix?: string;
  /** Master password of the store, when the test brings its own Dovecot. */
  readonly masterPassword?: string;
}

/** A unique scratch folder inside the run's scratch directory. */
export function scratchDir(name: string): string {
  const dir = path.join(inject('scratchDir'), `${name}-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Settings for a gateway under test, as an operator would write them: the run's shared Redis (own key
 * prefix) and Dovecot, the run's development PKI, every listener on an ephemeral loopback port, fast
 * retries. `testConfig` validates them; child-process tests write them to a file.
 */
export function testSettings(options: TestGatewayOptions = {}): Record<string, unknown> {
  const dataDir = options.dataDir ?? scratchDir('gw');
  mkdirSync(dataDir, { recursive: true });
  const dovecot = inject('dovecot');
  const masterPasswordFile = path.join(dataDir, 'master.secret');
  writeFileSync(masterPasswordFile, options.masterPassword ?? dovecot.masterPassword, { mode: 0o600 });
  const base = {
    dataDir,
    ...devPkiSettings(inject('pkiDir')),
    smtp: {
      hostname: 'mx.op.mssante.test',
      mx: { host: '127.0.0.1', port: 0 },
      submission: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    },
    imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
    redis: { url: inject('redisUrl'), prefix: options.prefix ?? `test:${randomUUID()}:` },
    store: { imap: dovecot.imap, lmtp: dovecot.lmtp, masterUser: dovecot.masterUser, masterPasswordFile },
    delivery: { retryInitialSeconds: 0.2, retryMaxSeconds: 1 },
    metrics: { port: 0 },
    admin: { port: 0 },
    log: { level: 'silent' },
  };
  return deepMerge(base, options.overrides ?? {});
}

export function testConfig(options: TestGatewayOptions = {}): Config {
  return loadConfig({ configDir: '/nonexistent', env: {}, overrides: testSettings(options) });
}

export function deepMerge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const cur = out[k];
    out[k] =
      cur && typeof cur === 'object' && !Array.isArray(cur) && v && typeof v === 'object' && !Array.isArray(v)
        ? deepMerge(cur as Record<string, unknown>, v as Record<string, unknown>)
        : v;
  }
  return out;
}

export async function startTestGateway(options: TestGatewayOptions = {}): Promise<Gateway> {
  const config = testConfig(options);
  return Gateway.start(config, { logger: createLogger({ level: 'silent' }) });
}

/** PEM files of the run's development PKI. */
export function pkiFile(name: string): string {
  return readFileSync(path.join(inject('pkiDir'), name), 'utf8');
}

/** Key and certificate chain of a development PKI leaf, e.g. `peer-trusted`. */
export function identity(name: string): { key: string; cert: string } {
  return { key: pkiFile(`${name}.key`), cert: pkiFile(`${name}.chain.pem`) };
}

export const PEER_DOMAIN = 'peer.mssante.test';
export const OUR_DOMAIN = 'op.mssante.test';

/** A unique local mailbox address. */
export function uniqueBal(prefix = 'bal'): string {
  return `${prefix}.${randomUUID().slice(0, 8)}@${OUR_DOMAIN}`;
}
