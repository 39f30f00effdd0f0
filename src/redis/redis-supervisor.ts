import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import {
  SupervisedProcess,
  findProcesses,
  readCmdline,
  readPidFile,
  terminateProcesses,
} from '../shared/index.js';
import { assertSocketPathFits, redisPaths, renderRedisConfig, type RedisPaths } from './redis-config.js';

export interface EmbeddedRedisOptions {
  /** The gateway's data directory; Redis lives in `<dataDir>/redis` and `<dataDir>/run`. */
  readonly dataDir: string;
  /** redis-server program. Default `redis-server` (from PATH). */
  readonly binary?: string;
  readonly logger: Logger;
}

export interface EmbeddedRedis {
  /** `unix:///abs/path/redis.sock`, understood by createRedisClient. */
  readonly url: string;
  readonly socketPath: string;
  /** Pid of the current redis-server (changes if the supervisor had to restart it). */
  readonly pid: number;
  /** SIGTERM (Redis flushes the AOF), resolves once redis-server has exited. */
  stop(): Promise<void>;
}

/**
 * The redis-server processes that belong to this data directory. Redis rewrites its process title
 * to `redis-server unixsocket:<path>`, so the socket path identifies it; just after exec the title
 * is still `redis-server <config file>`.
 */
export async function findEmbeddedRedisProcesses(
  dataDir: string,
  binary = 'redis-server',
): Promise<number[]> {
  const paths = redisPaths(dataDir);
  return findProcesses((argv) => isOurRedis(argv, paths, binary));
}

function isOurRedis(argv: readonly string[], paths: RedisPaths, binary: string): boolean {
  const line = argv.join(' ');
  const isServer = line.includes('redis-server') || line.includes(path.basename(binary));
  return isServer && (line.includes(`unixsocket:${paths.socketPath}`) || line.includes(paths.configFile));
}

/**
 * A gateway killed with SIGKILL leaves its redis-server running (it still holds the AOF and the
 * socket). Stop it, found through the pidfile or the process table, before starting a new one.
 */
async function stopStaleRedis(paths: RedisPaths, binary: string, logger: Logger): Promise<void> {
  const pids = new Set(await findProcesses((argv) => isOurRedis(argv, paths, binary)));
  const fromPidFile = await readPidFile(paths.pidFile);
  if (fromPidFile !== undefined) {
    const argv = await readCmdline(fromPidFile);
    if (argv && isOurRedis(argv, paths, binary)) pids.add(fromPidFile);
  }
  if (pids.size === 0) return;
  logger.warn(
    { event: 'redis.stale.stopping', pids: [...pids] },
    'stopping a redis-server left by a previous run',
  );
  const killed = await terminateProcesses([...pids], 10_000);
  if (killed.length > 0)
    logger.warn({ event: 'redis.stale.killed', pids: killed }, 'stale redis-server needed SIGKILL');
}

async function pingOnce(socketPath: string): Promise<boolean> {
  const client = new Redis({
    path: socketPath,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
    connectTimeout: 1_000,
  });
  client.on('error', () => {}); // refused while redis-server starts: the caller polls again
  try {
    await client.connect();
    // While it loads the AOF Redis answers -LOADING, which rejects here: not ready yet.
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

async function waitForPing(socketPath: string, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    if (await pingOnce(socketPath)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new GatewayError('REGISTRY_UNAVAILABLE', 'redis-server exited before it answered');
}

/**
 * Starts the embedded Redis (ARCHITECTURE.md §7) on a unix socket only, waits until it answers
 * PING, and keeps it running: an unexpected exit is logged and followed by a restart with backoff.
 */
export async function startEmbeddedRedis(options: EmbeddedRedisOptions): Promise<EmbeddedRedis> {
  const paths = redisPaths(options.dataDir);
  assertSocketPathFits(paths.socketPath);
  const binary = options.binary ?? 'redis-server';
  const { logger } = options;
  // Folders created on the way to the data directory stay searchable (not listable): the embedded
  // Dovecot's unprivileged users must be able to traverse them.
  await mkdir(path.dirname(paths.dir), { recursive: true, mode: 0o711 });
  await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  await mkdir(paths.runDir, { recursive: true, mode: 0o750 });
  await writeFile(paths.configFile, renderRedisConfig(paths), { mode: 0o600 });

  const supervised = await SupervisedProcess.start({
    name: 'redis',
    command: binary,
    args: [paths.configFile],
    outputFile: paths.outputFile,
    logger,
    failureCode: 'REGISTRY_UNAVAILABLE',
    missingHint: 'install the redis-server package, or set redis.serverBinary (or redis.url)',
    beforeStart: () => stopStaleRedis(paths, binary, logger),
    ready: (signal) => waitForPing(paths.socketPath, signal),
  });
  return {
    // Percent-encoded like a file URL, so that '#', '?' or '%' in the path survive URL parsing.
    url: `unix://${pathToFileURL(paths.socketPath).pathname}`,
    socketPath: paths.socketPath,
    get pid() {
      return supervised.pid;
    },
    stop: () => supervised.stop(),
  };
}
