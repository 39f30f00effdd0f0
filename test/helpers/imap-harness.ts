import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { inject } from 'vitest';
import {
  type ClientAuthenticator,
  GatewayAuthenticator,
  JwtTokenVerifier,
  effectiveIssuers,
  ensureDevIssuer,
  mintDevToken,
} from '../../src/auth/index.js';
import { systemClock } from '../../src/shared/index.js';
import type { Config } from '../../src/config/index.js';
import {
  type ImapAddresses,
  ImapFrontEnd,
  type ImapObserver,
  type StoreAccess,
} from '../../src/imap/index.js';
import { FileAuditJournal, createLogger } from '../../src/observability/index.js';
import { devPkiSettings, loadTrustMaterial } from '../../src/pki/index.js';
import { BalRegistry } from '../../src/registry/index.js';
import { storeProvisioner } from './admin-harness.js';
import { testConfig } from './gateway.js';
import { journalEvents } from './journal.js';
import { sharedStore } from './store-mailbox.js';

const SYSTEM = { kind: 'system' as const, id: 'imap-test' };

/** Every observer call, in order, as `[method, ...args]`. */
export type ObservedCall = [keyof ImapObserver, ...unknown[]];

export interface ImapHarnessOptions {
  /**
   * Settings of the `imap` section over the test defaults (port 0 on loopback). Given to the front end
   * as they are, so tests may use limits the schema refuses (a one-second idle timeout).
   */
  readonly imap?: Partial<Config['imap']>;
  /** Wraps the real authenticator (e.g. to offer fewer mechanisms). */
  readonly authenticator?: (real: ClientAuthenticator) => ClientAuthenticator;
  readonly store?: StoreAccess;
  readonly shutdownGraceMs?: number;
  /** Other `auth` settings (failure limits). */
  readonly auth?: Record<string, unknown>;
  /** `auth.passwordTypes`: mailbox types that may use PLAIN/LOGIN. */
  readonly passwordTypes?: ReadonlyArray<'PER' | 'ORG' | 'APP' | 'CAB'>;
}

export interface ImapHarness {
  readonly frontEnd: ImapFrontEnd;
  readonly addresses: ImapAddresses;
  readonly registry: BalRegistry;
  readonly authenticator: GatewayAuthenticator;
  readonly pkiDir: string;
  readonly observed: ObservedCall[];
  /** A new active mailbox in the registry and the store. */
  mailbox(type: 'PER' | 'ORG' | 'APP', owner: string, label?: string): Promise<string>;
  token(nationalId: string, ttlSeconds?: number): Promise<string>;
  /** A token of the development issuer that expired an hour ago. */
  expiredToken(nationalId: string): Promise<string>;
  journal(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

function recordingObserver(calls: ObservedCall[]): ImapObserver {
  const record =
    (name: keyof ImapObserver) =>
    (...args: unknown[]) =>
      void calls.push([name, ...args]);
  return {
    connectionOpened: record('connectionOpened'),
    connectionClosed: record('connectionClosed'),
    connectionRefused: record('connectionRefused'),
    tlsHandshake: record('tlsHandshake'),
    login: record('login'),
    protocolError: record('protocolError'),
    sessionClosed: record('sessionClosed'),
  };
}

/**
 * The IMAP front end wired as the composition root would: the real GatewayAuthenticator on a real
 * BalRegistry (run's Redis, unique prefix, real store provisioner), the development token issuer, the
 * run's development PKI, the shared Dovecot with its master user, a file journal in a scratch folder.
 */
export async function startImapHarness(options: ImapHarnessOptions = {}): Promise<ImapHarness> {
  const config = testConfig({
    overrides: {
      imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
      auth: { passwordTypes: [...(options.passwordTypes ?? [])], ...options.auth },
    },
  });
  const pkiDir = inject('pkiDir');
  await ensureDevIssuer(pkiDir);
  const prefix = `test:${randomUUID()}:`;
  const redis = new Redis(inject('redisUrl'));
  const journalDir = path.join(config.dataDir, 'journal');
  mkdirSync(journalDir, { recursive: true });
  const journal = new FileAuditJournal({ dir: journalDir, clock: systemClock });
  const logger = createLogger({ level: 'silent' });
  const registry = new BalRegistry({
    redis,
    prefix,
    domains: config.domains,
    clock: systemClock,
    journal,
    provisioner: storeProvisioner(),
  });
  const trust = loadTrustMaterial(devPkiSettings(pkiDir).tls).material;
  const authenticator = new GatewayAuthenticator({
    config: { ...config.auth, mode: config.mode },
    registry,
    redis,
    prefix,
    authorities: () => trust.authorities,
    journal,
    logger,
    clock: systemClock,
    verifier: new JwtTokenVerifier({
      issuers: effectiveIssuers({ ...config, pkiDir }),
      clockSkewSeconds: config.auth.clockSkewSeconds,
      jwksCacheSeconds: config.auth.jwksCacheSeconds,
      mode: config.mode,
      clock: systemClock,
    }),
  });
  const observed: ObservedCall[] = [];
  const shared = sharedStore();
  const frontEnd = new ImapFrontEnd({
    config: { ...config.imap, host: '127.0.0.1', port: 0, tlsPort: 0, ...options.imap },
    tls: () => ({ ...trust, minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc }),
    authenticator: options.authenticator ? options.authenticator(authenticator) : authenticator,
    store: options.store ?? { imap: shared.imap, master: shared.master },
    logger,
    journal,
    observer: recordingObserver(observed),
    clock: systemClock,
    ...(options.shutdownGraceMs === undefined ? {} : { shutdownGraceMs: options.shutdownGraceMs }),
  });
  const addresses = await frontEnd.listen().catch(async (err: unknown) => {
    await frontEnd.close();
    journal.close();
    redis.disconnect();
    throw err;
  });
  return {
    frontEnd,
    addresses,
    registry,
    authenticator,
    pkiDir,
    observed,
    mailbox: async (type, owner, label = type.toLowerCase()) => {
      const address = `${label}.${randomUUID().slice(0, 8)}@${config.domains[0]}`;
      await registry.create({ address, type, owner }, SYSTEM);
      return address;
    },
    token: (subject, ttlSeconds = 300) => mintDevToken({ pkiDir, subject, ttlSeconds }),
    expiredToken: (subject) =>
      mintDevToken({ pkiDir, subject, ttlSeconds: 60, now: new Date(Date.now() - 3_600_000) }),
    journal: () => journalEvents(config.dataDir),
    close: async () => {
      await frontEnd.close();
      journal.close();
      redis.disconnect();
    },
  };
}

export { SYSTEM as TEST_ACTOR };
