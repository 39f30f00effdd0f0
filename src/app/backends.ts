import { readFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import { type Config, readSecretFile } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { createRedisClient, redisTargetOf, startEmbeddedRedis, type RedisTarget } from '../redis/index.js';
import { startEmbeddedDovecot } from '../store/index.js';
import type { StartTimings } from './start-timings.js';

/** Where the mailbox store is, whether we run it or an operator does. */
export interface StoreEndpoints {
  readonly imap: { host: string; port: number };
  readonly lmtp: { host: string; port: number } | { path: string };
  readonly master: { user: string; password: string };
}

export interface Backends {
  readonly redis: Redis;
  /**
   * A new Redis connection that waits out reconnections (`maxRetriesPerRequest: null`), as BullMQ
   * needs for its workers; the caller closes it.
   */
  connect(name: string): Redis;
  readonly store: StoreEndpoints;
  readonly embedded: { redis: boolean; store: boolean };
  stop(): Promise<void>;
}

/**
 * Redis and Dovecot: external when configured (distributed deployment), otherwise started and
 * supervised under the data directory (ARCHITECTURE.md §7, embedded default). Both or neither of
 * `store.imap` and `store.lmtp` must be set. The two start side by side (neither needs the other):
 * an embedded Redis and an embedded Dovecot each take a second or more on a busy machine.
 */
export async function startBackends(
  config: Config,
  logger: Logger,
  timings?: StartTimings,
): Promise<Backends> {
  const timed = <T>(step: string, work: () => Promise<T>): Promise<T> =>
    timings ? timings.time(step, work) : work();
  const [redisSide, storeSide] = await Promise.allSettled([
    timed('redis', () => startRedisSide(config, logger)),
    timed('dovecot', () => startStoreSide(config, logger)),
  ]);
  // Stopped in reverse of a sequential start: Dovecot, then our Redis connection, then Redis.
  const stops = [redisSide, storeSide].flatMap((side) =>
    side.status === 'fulfilled' ? side.value.stops : [],
  );
  const stopAll = async () => {
    for (const s of stops.reverse())
      await s().catch((err: unknown) => logger.error({ err }, 'backend stop failed'));
  };
  if (redisSide.status === 'rejected' || storeSide.status === 'rejected') {
    await stopAll();
    throw redisSide.status === 'rejected' ? redisSide.reason : (storeSide as PromiseRejectedResult).reason;
  }
  const { target, password, redis, external } = redisSide.value;
  const connect = (name: string) =>
    createRedisClient(target, {
      ...(password ? { password } : {}),
      name: `mssgw-${name}`,
      maxRetriesPerRequest: null,
    });
  return {
    redis,
    connect,
    store: storeSide.value.store,
    embedded: { redis: !external, store: storeSide.value.embedded },
    stop: stopAll,
  };
}

/** What a side of startBackends started, with the steps that stop it, in start order. */
interface Started {
  readonly stops: ReadonlyArray<() => Promise<void>>;
}

/** The configured Redis, or ours started under the data directory; and the gateway's connection to it. */
async function startRedisSide(
  config: Config,
  logger: Logger,
): Promise<Started & { target: RedisTarget; password: string | undefined; redis: Redis; external: boolean }> {
  const stops: Array<() => Promise<void>> = [];
  try {
    const external = redisTargetOf(
      config.redis,
      secretOf(config.redis.sentinelPasswordFile),
      config.redis.caFile === undefined ? undefined : readFileSync(config.redis.caFile, 'utf8'),
    );
    let target: RedisTarget;
    if (external) target = external;
    else {
      const embedded = await startEmbeddedRedis({
        dataDir: config.dataDir,
        binary: config.redis.serverBinary,
        logger: logger.child({ component: 'redis' }),
      });
      stops.push(() => embedded.stop());
      target = embedded.url;
    }
    const password = secretOf(config.redis.passwordFile);
    const redis = createRedisClient(target, { ...(password ? { password } : {}), name: 'mssgw' });
    stops.push(async () => {
      // QUIT waits for a connection; with Redis away (a stop during an outage) it would never end.
      if (redis.status === 'ready') await redis.quit().catch(() => redis.disconnect());
      else redis.disconnect();
    });
    return { stops, target, password, redis, external: external !== undefined };
  } catch (err) {
    for (const s of stops.reverse()) await s().catch(() => undefined);
    throw err;
  }
}

/** The configured store, or our Dovecot started under the data directory (or beside it, see embeddedStoreDir). */
async function startStoreSide(
  config: Config,
  logger: Logger,
): Promise<Started & { store: StoreEndpoints; embedded: boolean }> {
  const { imap, lmtp } = config.store;
  if (imap && lmtp) {
    if (!config.store.masterPasswordFile)
      throw new GatewayError('CONFIG_INVALID', 'store.masterPasswordFile is required with an external store');
    const master = {
      user: config.store.masterUser,
      password: readSecretFile(config.store.masterPasswordFile),
    };
    return { stops: [], store: { imap, lmtp, master }, embedded: false };
  }
  const storeDir = await embeddedStoreDir(config.dataDir);
  if (storeDir !== config.dataDir) {
    logger.warn(
      { event: 'dovecot.store_dir', dataDir: config.dataDir, storeDir },
      'a parent of the data directory is private: the embedded Dovecot keeps its files elsewhere',
    );
  }
  const dovecot = await startEmbeddedDovecot({
    dataDir: storeDir,
    binary: config.store.dovecotBinary,
    mailUser: config.store.mailUser,
    masterUser: config.store.masterUser,
    ...(config.store.embeddedImapPort === undefined ? {} : { imapPort: config.store.embeddedImapPort }),
    logger: logger.child({ component: 'dovecot' }),
  });
  return {
    stops: [() => dovecot.stop()],
    store: {
      imap: dovecot.imap,
      lmtp: dovecot.lmtp,
      master: { user: dovecot.masterUser, password: dovecot.masterPassword },
    },
    embedded: true,
  };
}

function secretOf(file: string | undefined): string | undefined {
  return file ? readSecretFile(file) : undefined;
}

/** Where the embedded Dovecot keeps its files when the data directory cannot host them. */
export const PRIVATE_PARENT_STORE_ROOT = '/var/lib/mssgw';

/**
 * Dovecot's mail and login processes run as unprivileged users, so every directory above its files
 * must be searchable by others. The data directory is ours to open up (search only), its parents
 * are not: a clone under /root (0700 on Debian) would otherwise refuse to start. Then, when running
 * as root, Dovecot's files go to a fixed place derived from the data directory, the same at every
 * start (so a restart finds its mail); the rest stays in the data directory.
 */
export async function embeddedStoreDir(dataDir: string, root = PRIVATE_PARENT_STORE_ROOT): Promise<string> {
  if (process.getuid?.() !== 0) return dataDir; // not root: Dovecot runs as this user and reaches it
  for (let dir = path.dirname(dataDir); ; dir = path.dirname(dir)) {
    // A parent that does not exist yet will be ours (created with the data directory).
    const st = await stat(dir).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (st && (st.mode & 0o001) === 0) {
      const id = createHash('sha256').update(dataDir).digest('hex').slice(0, 16);
      const storeDir = path.join(root, id);
      await mkdir(storeDir, { recursive: true, mode: 0o711 });
      return storeDir;
    }
    if (dir === path.dirname(dir)) return dataDir;
  }
}
