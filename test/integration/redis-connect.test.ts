import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createRedisClient, redisOptionsFromUrl } from '../../src/redis/index.js';

describe('createRedisClient', () => {
  it('talks to a redis:// URL', async () => {
    const client = createRedisClient(inject('redisUrl'), { name: 'connect-test' });
    const key = `test:${randomUUID()}:k`;
    try {
      await client.set(key, 'v', 'EX', 60);
      expect(await client.get(key)).toBe('v');
      expect(await client.client('GETNAME')).toBe('connect-test');
    } finally {
      await client.quit();
    }
  });

  it('fails fast while Redis is unreachable instead of queueing forever', async () => {
    const url = `unix://${path.join(inject('scratchDir'), 'no-redis-here.sock')}`;
    const client = createRedisClient(url);
    try {
      const started = Date.now();
      await expect(client.get('anything')).rejects.toThrow();
      expect(Date.now() - started).toBeLessThan(3_000);
    } finally {
      client.disconnect();
    }
  });

  it('reads unix, redis and rediss URLs', () => {
    expect(redisOptionsFromUrl('unix:///var/lib/mssgw/run/redis.sock')).toEqual({
      path: '/var/lib/mssgw/run/redis.sock',
      db: 0,
    });
    expect(redisOptionsFromUrl('unix:///tmp/r.sock?db=2')).toMatchObject({ path: '/tmp/r.sock', db: 2 });
    expect(redisOptionsFromUrl('redis://10.0.0.5/1')).toEqual({ host: '10.0.0.5', port: 6379, db: 1 });
    expect(redisOptionsFromUrl('rediss://gw:p%40ss@redis.internal:6380')).toEqual({
      host: 'redis.internal',
      port: 6380,
      db: 0,
      username: 'gw',
      password: 'p@ss',
      tls: { servername: 'redis.internal' },
    });
    expect(() => redisOptionsFromUrl('http://x')).toThrow(/unsupported Redis URL scheme/);
    expect(() => redisOptionsFromUrl('unix://')).toThrow(/without a socket path/);
  });
});
