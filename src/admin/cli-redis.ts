import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { type ErrorCode, GatewayError, isGatewayError } from '../errors/index.js';
import type * as RedisModule from '../redis/index.js';
import { configModule } from './cli-config.js';

/** ioredis and our wrapper, imported by the first command that reads Redis (not by `mssgw --help`). */
let redisModule: typeof RedisModule | undefined;

async function loadRedisModule(): Promise<typeof RedisModule> {
  return (redisModule ??= await import('../redis/index.js'));
}

/**
 * A client of the gateway's Redis for the commands that read it directly: `redis.url`, else the
 * embedded one's socket under the data directory; the password from `redis.passwordFile`.
 * `maxRetriesPerRequest` 1 fails fast when Redis is down; BullMQ connections need null.
 * Synchronous for BullMQ's connect callbacks: call it within withGatewayRedis, which loads the module.
 */
export function gatewayRedisClient(config: Config, maxRetriesPerRequest: number | null = 1): Redis {
  if (redisModule === undefined)
    throw new GatewayError('INTERNAL', 'gatewayRedisClient is called within withGatewayRedis');
  const { createRedisClient, redisPaths, redisTargetOf } = redisModule;
  const { readSecretFile } = configModule();
  const sentinelPassword = config.redis.sentinelPasswordFile
    ? readSecretFile(config.redis.sentinelPasswordFile)
    : undefined;
  const target =
    redisTargetOf(
      config.redis,
      sentinelPassword,
      config.redis.caFile === undefined ? undefined : readFileSync(config.redis.caFile, 'utf8'),
    ) ?? `unix://${redisPaths(path.resolve(config.dataDir)).socketPath}`;
  const password = config.redis.passwordFile ? readSecretFile(config.redis.passwordFile) : undefined;
  return createRedisClient(target, {
    name: 'mssgw-cli',
    maxRetriesPerRequest,
    ...(password === undefined ? {} : { password }),
  });
}

/**
 * Runs `fn` with a gateway Redis client, disconnected afterwards. A failure to read Redis becomes
 * `unavailable` with a hint for the operator; other gateway errors pass unchanged. An `unavailable`
 * error from the code underneath (e.g. the registry's) is rewrapped so that it carries the hint.
 */
export async function withGatewayRedis<T>(
  config: Config,
  unavailable: ErrorCode,
  fn: (redis: Redis) => Promise<T>,
): Promise<T> {
  await loadRedisModule();
  const redis = gatewayRedisClient(config);
  try {
    return await fn(redis);
  } catch (err) {
    if (isGatewayError(err) && err.code !== unavailable) throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new GatewayError(
      unavailable,
      `cannot read the gateway's Redis: ${why} (is the gateway running? are redis.url or redis.sentinels right?)`,
      {},
      { cause: err },
    );
  } finally {
    redis.disconnect();
  }
}
