import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { redisOptionsFor, redisTargetOf } from '../../src/redis/index.js';

const noFiles = { configDir: '/nonexistent', env: {} };
const sentinels = [
  { host: 'redis-1.test', port: 26379 },
  { host: 'redis-2.test', port: 26379 },
];

describe('Redis Sentinel options', () => {
  it('passes the ACL users, database and TLS of the settings to ioredis', () => {
    const { redis } = loadConfig({
      ...noFiles,
      overrides: {
        redis: {
          sentinels,
          masterName: 'mssgw-primary',
          sentinelUsername: 'watcher',
          sentinelTls: true,
          tls: true,
          username: 'mssgw',
          db: 3,
        },
      },
    });
    const options = redisOptionsFor(redisTargetOf(redis, 'sentinel-secret', 'PEM CA')!);
    expect(options).toMatchObject({
      sentinels,
      name: 'mssgw-primary',
      role: 'master',
      sentinelUsername: 'watcher',
      sentinelPassword: 'sentinel-secret',
      sentinelTLS: { ca: 'PEM CA' },
      tls: { ca: 'PEM CA' },
      enableTLSForSentinelMode: true,
      username: 'mssgw',
      db: 3,
    });
  });

  it('without them: plain connections, database 0, no users', () => {
    const { redis } = loadConfig({ ...noFiles, overrides: { redis: { sentinels } } });
    const options = redisOptionsFor(redisTargetOf(redis)!);
    expect(options.db).toBe(0);
    for (const key of ['sentinelTLS', 'tls', 'enableTLSForSentinelMode', 'username', 'sentinelUsername'])
      expect(options).not.toHaveProperty(key);
  });

  it('refuses them with a single redis.url, where the URL says them, naming each key', () => {
    let caught: unknown;
    try {
      loadConfig({
        ...noFiles,
        overrides: { redis: { url: 'redis://127.0.0.1:6379', username: 'u', db: 2, tls: true } },
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues.map((i) => i.key).sort()).toEqual([
      'redis.db',
      'redis.tls',
      'redis.username',
    ]);
  });
});
