import path from 'node:path';
import { GatewayError } from '../errors/index.js';

/** Where the embedded Redis keeps its files, all under the gateway's data directory. */
export interface RedisPaths {
  readonly dir: string;
  readonly configFile: string;
  readonly logFile: string;
  /** stdout/stderr of redis-server (start-up errors before the log file is open). */
  readonly outputFile: string;
  readonly runDir: string;
  readonly socketPath: string;
  readonly pidFile: string;
}

/**
 * sockaddr_un holds 108 bytes on Linux including the terminating NUL; we keep a margin because a
 * path that is silently truncated binds a different socket than the one clients look for.
 */
export const MAX_SOCKET_PATH_BYTES = 100;

export function redisPaths(dataDir: string): RedisPaths {
  const root = path.resolve(dataDir);
  const dir = path.join(root, 'redis');
  const runDir = path.join(root, 'run');
  return {
    dir,
    configFile: path.join(dir, 'redis.conf'),
    logFile: path.join(dir, 'redis.log'),
    outputFile: path.join(dir, 'redis.stdout.log'),
    runDir,
    socketPath: path.join(runDir, 'redis.sock'),
    pidFile: path.join(runDir, 'redis.pid'),
  };
}

export function assertSocketPathFits(socketPath: string): void {
  const bytes = Buffer.byteLength(socketPath);
  if (bytes > MAX_SOCKET_PATH_BYTES) {
    throw new GatewayError(
      'CONFIG_INVALID',
      `unix socket path ${socketPath} is ${bytes} bytes, more than ${MAX_SOCKET_PATH_BYTES}: ` +
        'choose a shorter MSSGW_DATA_DIR (dataDir)',
      { socketPath, bytes },
    );
  }
}

/** Redis quotes: a double-quoted string with backslash escapes. */
function quote(value: string): string {
  return `"${value.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;
}

/**
 * The embedded Redis configuration. Persistence is AOF only (ARCHITECTURE.md §6: writes the
 * registry acknowledges survive a restart): `everysec` bounds the loss on a power cut to one second,
 * and RDB snapshots are off because with `appendonly yes` Redis restores from the AOF anyway (the
 * RDB preamble keeps rewrites compact). `noeviction`: registry and queue keys must never be
 * dropped silently to make room.
 */
export function renderRedisConfig(paths: RedisPaths): string {
  return [
    '# Written by the gateway at every start (embedded mode); edits are overwritten.',
    'port 0',
    `unixsocket ${quote(paths.socketPath)}`,
    'unixsocketperm 700',
    `dir ${quote(paths.dir)}`,
    'appendonly yes',
    'appendfsync everysec',
    'aof-use-rdb-preamble yes',
    'save ""',
    'maxmemory-policy noeviction',
    'daemonize no',
    'supervised no',
    `pidfile ${quote(paths.pidFile)}`,
    `logfile ${quote(paths.logFile)}`,
    'loglevel notice',
    '',
  ].join('\n');
}
