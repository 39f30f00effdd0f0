import { Redis, type RedisOptions } from 'ioredis';
import { GatewayError, redisErrorKind } from '../errors/index.js';
import type { Logger } from '../observability/index.js';

export interface RedisClientOptions {
  /** Overrides a password in the URL (the configuration keeps it in a file, not the URL). */
  readonly password?: string;
  /** CLIENT SETNAME, to tell the gateway's connections apart in CLIENT LIST. */
  readonly name?: string;
  /** Where connection errors go; without it they are only kept from being unhandled. */
  readonly logger?: Logger;
  /**
   * Retries of one command across reconnections before it fails. Default 1, so that a caller
   * fails fast (REGISTRY_UNAVAILABLE) while Redis is down instead of hanging. BullMQ workers need
   * `null` (their blocking commands must wait out a reconnection).
   */
  readonly maxRetriesPerRequest?: number | null;
}

/**
 * A Redis reached through Redis Sentinel (https://redis.io/docs/latest/operate/oss_and_stack/management/sentinel/):
 * the client asks the sentinels for the current primary of `masterName`, and asks again when the
 * connection is lost or the server answers READONLY (a failover).
 */
export interface RedisSentinelTarget {
  readonly sentinels: readonly { readonly host: string; readonly port: number }[];
  readonly masterName: string;
  /** Password of the sentinels themselves (`requirepass` in sentinel.conf), when they have one. */
  readonly sentinelPassword?: string;
  /** ACL user of the sentinels themselves. */
  readonly sentinelUsername?: string;
  /** TLS to the sentinels, and to the primary they name; `ca` checks both (absent: system CAs). */
  readonly sentinelTls?: boolean;
  readonly tls?: boolean;
  readonly ca?: string;
  /** ACL user and database on the primary. */
  readonly username?: string;
  readonly db?: number;
}

/** Where the gateway's Redis is: a URL (one server) or a set of sentinels. */
export type RedisTarget = string | RedisSentinelTarget;

/** The external Redis that settings name, or undefined when the gateway runs its own. */
export function redisTargetOf(
  settings: {
    readonly url?: string | undefined;
    readonly sentinels?: readonly { readonly host: string; readonly port: number }[] | undefined;
    readonly masterName: string;
    readonly sentinelUsername?: string | undefined;
    readonly sentinelTls?: boolean;
    readonly tls?: boolean;
    readonly username?: string | undefined;
    readonly db?: number;
  },
  sentinelPassword?: string,
  ca?: string,
): RedisTarget | undefined {
  if (settings.sentinels && settings.sentinels.length > 0) {
    const { sentinelUsername, username } = settings;
    return {
      sentinels: settings.sentinels,
      masterName: settings.masterName,
      ...(sentinelPassword === undefined ? {} : { sentinelPassword }),
      ...(sentinelUsername === undefined ? {} : { sentinelUsername }),
      ...(settings.sentinelTls ? { sentinelTls: true } : {}),
      ...(settings.tls ? { tls: true } : {}),
      ...(ca === undefined ? {} : { ca }),
      ...(username === undefined ? {} : { username }),
      ...(settings.db ? { db: settings.db } : {}),
    };
  }
  return settings.url;
}

/** ioredis options for a target: see redisOptionsFromUrl and RedisSentinelTarget. */
export function redisOptionsFor(target: RedisTarget): RedisOptions {
  if (typeof target === 'string') return redisOptionsFromUrl(target);
  return {
    sentinels: target.sentinels.map((s) => ({ host: s.host, port: s.port })),
    name: target.masterName,
    role: 'master',
    ...(target.sentinelPassword === undefined ? {} : { sentinelPassword: target.sentinelPassword }),
    ...(target.sentinelUsername === undefined ? {} : { sentinelUsername: target.sentinelUsername }),
    ...(target.username === undefined ? {} : { username: target.username }),
    db: target.db ?? 0,
    // The primary's certificate is checked for the address the sentinels give (ioredis' default).
    ...(target.sentinelTls ? { sentinelTLS: target.ca === undefined ? {} : { ca: target.ca } } : {}),
    ...(target.tls
      ? { tls: target.ca === undefined ? {} : { ca: target.ca }, enableTLSForSentinelMode: true }
      : {}),
    // No `failoverDetector`: its +switch-master handler disconnects the connector, and when that
    // lands while the client is asking the sentinels (reconnecting after the primary died) ioredis
    // ends the client for good ("Connection is closed.", found by redis-sentinel.test.ts). A dead
    // primary closes our connections, and a demoted one answers READONLY (reconnectOnError), so
    // the failover is followed without it.
    sentinelRetryStrategy: retryStrategy,
  };
}

/** Options for one Redis URL: `unix:///path/redis.sock`, `redis://` or `rediss://`. */
export function redisOptionsFromUrl(url: string): RedisOptions {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch (err) {
    throw new GatewayError('CONFIG_INVALID', 'Redis URL is not a valid URL', {}, { cause: err });
  }
  const db = dbFrom(parsed);
  const credentials: RedisOptions = {};
  if (parsed.username) credentials.username = decodeURIComponent(parsed.username);
  if (parsed.password) credentials.password = decodeURIComponent(parsed.password);
  switch (parsed.protocol) {
    case 'unix:':
      if (!parsed.pathname || parsed.pathname === '/') {
        throw new GatewayError('CONFIG_INVALID', 'unix:// Redis URL without a socket path');
      }
      return { ...credentials, path: decodeURIComponent(parsed.pathname), db };
    case 'redis:':
    case 'rediss:': {
      const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1';
      const options: RedisOptions = { ...credentials, host, port: Number(parsed.port || 6379), db };
      if (parsed.protocol === 'rediss:') options.tls = { servername: host };
      return options;
    }
    default:
      throw new GatewayError('CONFIG_INVALID', `unsupported Redis URL scheme ${parsed.protocol}`, {
        scheme: parsed.protocol,
      });
  }
}

function dbFrom(url: URL): number {
  // redis://host/3 selects db 3; unix:///path?db=3 since the path is the socket.
  const raw = url.protocol === 'unix:' ? url.searchParams.get('db') : url.pathname.slice(1);
  if (!raw) return 0;
  if (!/^\d+$/.test(raw)) throw new GatewayError('CONFIG_INVALID', 'Redis database must be a number');
  return Number(raw);
}

/**
 * Reconnect forever with a capped backoff: Redis coming back (restart, failover) must not need a
 * gateway restart. Commands issued meanwhile fail after `maxRetriesPerRequest` attempts.
 */
function retryStrategy(times: number): number {
  return Math.min(100 * 2 ** Math.min(times, 6), 5_000);
}

/**
 * A Redis client for the gateway's services. Connects at once; connection errors are logged (at
 * most one line per distinct error every 30 s, since ioredis reports each failed reconnection).
 */
export function createRedisClient(target: RedisTarget, options: RedisClientOptions = {}): Redis {
  const redisOptions: RedisOptions = {
    ...redisOptionsFor(target),
    connectTimeout: 5_000,
    maxRetriesPerRequest: options.maxRetriesPerRequest === undefined ? 1 : options.maxRetriesPerRequest,
    retryStrategy,
    // After a Sentinel/replica failover the old primary answers READONLY: reconnect and resend.
    reconnectOnError: (err) => (redisErrorKind(err) === 'READONLY' ? 2 : false),
  };
  if (options.password !== undefined) redisOptions.password = options.password;
  if (options.name !== undefined) redisOptions.connectionName = options.name;
  const client = new Redis(redisOptions);
  client.on('error', errorReporter(options.logger, options.name));
  return client;
}

function errorReporter(logger: Logger | undefined, name: string | undefined): (err: Error) => void {
  let last = '';
  let lastAt = 0;
  return (err) => {
    const now = Date.now();
    // A log rate limit only: the same text again within 30 s is one line; nothing else depends on it.
    // eslint-disable-next-line no-restricted-syntax
    if (!logger || (err.message === last && now - lastAt < 30_000)) return;
    last = err.message;
    lastAt = now;
    logger.warn(
      { event: 'redis.connection.error', client: name, err: err.message },
      'redis connection error',
    );
  };
}
