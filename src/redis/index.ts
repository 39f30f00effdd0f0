export { createRedisClient, redisOptionsFromUrl, type RedisClientOptions } from './connect.js';
export { redisPaths, type RedisPaths } from './redis-config.js';
export {
  startEmbeddedRedis,
  findEmbeddedRedisProcesses,
  type EmbeddedRedis,
  type EmbeddedRedisOptions,
} from './redis-supervisor.js';
// Child-process supervision and /proc helpers: store/ uses them for the embedded Dovecot too.
export { SupervisedProcess, type SupervisedProcessOptions } from './supervised-process.js';
export {
  findProcesses,
  isRunning,
  readCmdline,
  readPidFile,
  terminateProcesses,
  waitFor,
} from './process-table.js';
