import { randomUUID } from 'node:crypto';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { afterEach, inject } from 'vitest';
import { buildAdminApi } from '../../src/admin/index.js';
import { systemClock, type Clock } from '../../src/shared/index.js';
import { FileAuditJournal, type AuditEvent } from '../../src/observability/journal.js';
import { createLogger } from '../../src/observability/logger.js';
import { BalRegistry, type MailboxProvisioner } from '../../src/registry/index.js';
import { provisionMailbox } from '../../src/store/index.js';

export const TEST_DOMAINS = ['op.mssante.test', 'cabinet.mssante.test'] as const;

/** The real store provisioner, on the run's shared Dovecot (global setup). */
export function storeProvisioner(imap = inject('dovecot').imap): MailboxProvisioner {
  const dovecot = inject('dovecot');
  const master = { user: dovecot.masterUser, password: dovecot.masterPassword };
  return { provision: (address) => provisionMailbox(imap, master, address) };
}

/** A fresh mailbox address in one of our domains (tests share one Dovecot). */
export function uniqueAddress(label = 'bal', domain: string = TEST_DOMAINS[0]): string {
  return `${label}.${randomUUID().slice(0, 8)}@${domain}`;
}

export interface AdminHarnessOptions {
  readonly token?: string;
  readonly provisioner?: MailboxProvisioner;
  /** Redis client for the registry; default a client of the run's Redis, closed by `close`. */
  readonly redis?: Redis;
  /** The registry's clock (grant expiry, `expired` flags); default the system clock. */
  readonly clock?: Clock;
}

export interface AdminHarness {
  /** Base URL of the admin API, on an ephemeral loopback port. */
  readonly url: string;
  readonly prefix: string;
  readonly registry: BalRegistry;
  /** Our own client on the run's Redis, for inspecting keys. */
  readonly redis: Redis;
  /** Every event the journal wrote, parsed from its JSONL files. */
  journal(): AuditEvent[];
  /** Every log line the API wrote, raw. */
  logs(): string;
  /** Every key under the prefix with its content: compare before and after a refused request. */
  keySpace(): Promise<Record<string, unknown>>;
  close(): Promise<void>;
}

/** A real BalRegistry on the run's Redis (unique prefix) behind a real admin API on port 0. */
export async function startAdminHarness(options: AdminHarnessOptions = {}): Promise<AdminHarness> {
  const prefix = `test:${randomUUID()}:`;
  const redis = new Redis(inject('redisUrl'));
  const registryRedis = options.redis ?? redis;
  const journalDir = path.join(inject('scratchDir'), `admin-journal-${randomUUID().slice(0, 8)}`);
  mkdirSync(journalDir, { recursive: true });
  const journal = new FileAuditJournal({ dir: journalDir, clock: systemClock });
  const registry = new BalRegistry({
    redis: registryRedis,
    prefix,
    domains: TEST_DOMAINS,
    clock: options.clock ?? systemClock,
    journal,
    provisioner: options.provisioner ?? storeProvisioner(),
  });
  let logText = '';
  const logSink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      logText += chunk.toString('utf8');
      done();
    },
  });
  const app = buildAdminApi({
    registry,
    logger: createLogger({ level: 'info' }, logSink),
    ...(options.token === undefined ? {} : { token: options.token }),
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    prefix,
    registry,
    redis,
    journal: () => readJournal(journalDir),
    logs: () => logText,
    keySpace: () => keySpace(redis, prefix),
    close: async () => {
      await app.close();
      journal.close();
      redis.disconnect();
    },
  };
}

function readJournal(dir: string): AuditEvent[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jsonl'))
    .sort()
    .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n'))
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as AuditEvent);
}

/** Every key under `prefix`, sorted (SCAN, so a large key space is not blocked on). */
export async function keysUnder(redis: Redis, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys.sort();
}

/** Every key under `prefix` with its content (also for a gateway's own Redis client and prefix). */
export async function keySpace(redis: Redis, prefix: string): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const key of await keysUnder(redis, prefix)) {
    const type = await redis.type(key);
    if (type === 'hash') out[key] = await redis.hgetall(key);
    else if (type === 'zset') out[key] = await redis.zrange(key, 0, -1, 'WITHSCORES');
    else if (type === 'string') out[key] = await redis.get(key);
    else out[key] = { type, dump: (await redis.dumpBuffer(key))?.toString('base64') };
  }
  return out;
}

/**
 * One harness per test: `start()` inside a test, closed after it whatever happens. Call at the top
 * of a test file.
 */
export function useAdminHarness(): (options?: AdminHarnessOptions) => Promise<AdminHarness> {
  let harness: AdminHarness | undefined;
  afterEach(async () => {
    await harness?.close();
    harness = undefined;
  });
  return async (options = {}) => {
    harness = await startAdminHarness(options);
    return harness;
  };
}
