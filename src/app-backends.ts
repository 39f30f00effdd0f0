import type { Redis } from 'ioredis';
import { type Config, readSecretFile } from './config/index.js';
import type { Logger } from './observability/index.js';
import { createRedisClient, startEmbeddedRedis } from './redis/index.js';
import { startEmbeddedDovecot } from './store/index.js';

/** Where the mailbox store is, whether we run it or an operator does. */
export interface StoreEndpoints {
  readonly imap: { host: string; port: number };
  readonly lmtp: { host: string; port: number } | { path: string };
  readonly master: { user: string; password: string };
}

export interface Backends {
  readonly redis: Redis;
  readonly store: StoreEndpoints;
  readonly embedded: { redis: boolean; store: boolean };
  stop(): Promise<void>;
}

/**
 * Redis and Dovecot: external when configured (distributed deployment), otherwise started and
 * supervised under the data directory (ARCHITECTURE.md §7, embedded default). Both or neither of
 * `store.imap` and `store.lmtp` must be set.
 */
export async function startBackends(config: Config, logger: Logger): Promise<Backends> {
  const stops: Array<() => Promise<void>> = [];
  const stopAll = async () => {
    for (const s of stops.reverse())
      await s().catch((err: unknown) => logger.error({ err }, 'backend stop failed'));
  };
  try {
    let url = config.redis.url;
    if (!url) {
      const embedded = await startEmbeddedRedis({
        dataDir: config.dataDir,
        binary: config.redis.serverBinary,
        logger: logger.child({ component: 'redis' }),
      });
      stops.push(() => embedded.stop());
      url = embedded.url;
    }
    const password = config.redis.passwordFile ? readSecretFile(config.redis.passwordFile) : undefined;
    const redis = createRedisClient(url, { ...(password ? { password } : {}), name: 'mssgw' });
    stops.push(async () => {
      await redis.quit().catch(() => redis.disconnect());
    });

    let store: StoreEndpoints;
    const { imap, lmtp } = config.store;
    if (imap && lmtp) {
      if (!config.store.masterPasswordFile)
        throw new Error('store.masterPasswordFile is required with an external store');
      store = {
        imap,
        lmtp,
        master: { user: config.store.masterUser, password: readSecretFile(config.store.masterPasswordFile) },
      };
    } else {
      const dovecot = await startEmbeddedDovecot({
        dataDir: config.dataDir,
        binary: config.store.dovecotBinary,
        mailUser: config.store.mailUser,
        masterUser: config.store.masterUser,
        logger: logger.child({ component: 'dovecot' }),
      });
      stops.push(() => dovecot.stop());
      store = {
        imap: dovecot.imap,
        lmtp: dovecot.lmtp,
        master: { user: dovecot.masterUser, password: dovecot.masterPassword },
      };
    }
    return { redis, store, embedded: { redis: !config.redis.url, store: !(imap && lmtp) }, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
