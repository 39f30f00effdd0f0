export {
  createRedisClient,
  redisOptionsFor,
  redisOptionsFromUrl,
  redisTargetOf,
  type RedisClientOptions,
  type RedisSentinelTarget,
  type RedisTarget,
} from './connect.js';
export { redisPaths, type RedisPaths } from './redis-config.js';
export {
  startEmbeddedRedis,
  findEmbeddedRedisProcesses,
  type EmbeddedRedis,
  type EmbeddedRedisOptions,
} from './redis-supervisor.js';
