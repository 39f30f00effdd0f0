import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../src/observability/index.js';
import {
  createRedisClient,
  findEmbeddedRedisProcesses,
  startEmbeddedRedis,
  type EmbeddedRedis,
} from '../../src/redis/index.js';
import { isRunning, waitFor } from '../../src/shared/index.js';
import {
  checkStoreHealth,
  deliverLmtp,
  findEmbeddedDovecotProcesses,
  startEmbeddedDovecot,
  type EmbeddedDovecot,
} from '../../src/store/index.js';
import { readInbox, uniqueMailbox } from '../helpers/store-mailbox.js';

const logger = createLogger({ level: 'silent' });
const repoRoot = path.resolve(import.meta.dirname, '../..');

function freshDataDir(): string {
  return path.join(inject('scratchDir'), `emb-${randomUUID().slice(0, 8)}`);
}

async function processesOf(dataDir: string): Promise<number[]> {
  return [...(await findEmbeddedRedisProcesses(dataDir)), ...(await findEmbeddedDovecotProcesses(dataDir))];
}

async function startBoth(dataDir: string): Promise<{ redis: EmbeddedRedis; dovecot: EmbeddedDovecot }> {
  const redis = await startEmbeddedRedis({ dataDir, logger });
  try {
    return { redis, dovecot: await startEmbeddedDovecot({ dataDir, logger }) };
  } catch (err) {
    await redis.stop();
    throw err;
  }
}

async function stopBoth(services: { redis: EmbeddedRedis; dovecot: EmbeddedDovecot }): Promise<void> {
  await Promise.all([services.dovecot.stop(), services.redis.stop()]);
}

function master(dovecot: EmbeddedDovecot): { user: string; password: string } {
  return { user: dovecot.masterUser, password: dovecot.masterPassword };
}

async function deliverOne(dovecot: EmbeddedDovecot, mailbox: string): Promise<void> {
  const message = Buffer.from(`Subject: kept\r\nMessage-ID: <${randomUUID()}@test>\r\n\r\nbody\r\n`);
  const results = await deliverLmtp(dovecot.lmtp, { from: '', to: [mailbox] }, message);
  expect(results).toMatchObject([{ outcome: 'delivered' }]);
}

/** Whether Redis' append-only files already hold `text` (it reaches the disk within a second). */
async function aofContains(dataDir: string, text: string): Promise<boolean> {
  const dir = path.join(dataDir, 'redis', 'appendonlydir');
  const files = await readdir(dir).catch(() => []);
  for (const file of files) {
    if ((await readFile(path.join(dir, file), 'latin1')).includes(text)) return true;
  }
  return false;
}

describe('embedded Redis and Dovecot', () => {
  it('keep Redis keys and mail across a stop and a restart, and leave no process behind', async () => {
    const dataDir = freshDataDir();
    const mailbox = uniqueMailbox('persist');
    const first = await startBoth(dataDir);
    try {
      const client = createRedisClient(first.redis.url, { name: 'embedded-test' });
      await client.set('registry:key', 'survives');
      await client.quit();
      await deliverOne(first.dovecot, mailbox);
    } finally {
      await stopBoth(first);
    }
    expect(await processesOf(dataDir)).toEqual([]);

    const second = await startBoth(dataDir);
    try {
      const client = createRedisClient(second.redis.url);
      expect(await client.get('registry:key')).toBe('survives');
      await client.quit();
      expect(second.dovecot.masterPassword).toBe(first.dovecot.masterPassword);
      expect(await readInbox(second.dovecot.imap, master(second.dovecot), mailbox)).toHaveLength(1);
    } finally {
      await stopBoth(second);
    }
    expect(await processesOf(dataDir)).toEqual([]);
  });

  it('restart Redis and Dovecot when they die, without losing acknowledged writes', async () => {
    const dataDir = freshDataDir();
    const services = await startBoth(dataDir);
    const client = createRedisClient(services.redis.url);
    try {
      await client.set('durable-key', 'fsynced');
      expect(await waitFor(() => aofContains(dataDir, 'durable-key'), 30_000)).toBe(true);
      const redisPid = services.redis.pid;
      process.kill(redisPid, 'SIGKILL');
      const redisBack = await waitFor(async () => {
        if (services.redis.pid === redisPid) return false;
        return (await client.get('durable-key').catch(() => null)) === 'fsynced';
      }, 60_000);
      expect(redisBack).toBe(true);

      const dovecotPid = services.dovecot.pid;
      process.kill(dovecotPid, 'SIGKILL');
      const dovecotBack = await waitFor(async () => {
        if (services.dovecot.pid === dovecotPid) return false;
        const health = await checkStoreHealth(services.dovecot.imap, services.dovecot.lmtp);
        return health.imap && health.lmtp;
      }, 60_000);
      expect(dovecotBack).toBe(true);
      await deliverOne(services.dovecot, uniqueMailbox('after-crash'));
    } finally {
      await client.quit();
      await stopBoth(services);
    }
    expect(await processesOf(dataDir)).toEqual([]);
  });

  it('start over the processes a gateway killed with SIGKILL left running', async () => {
    const dataDir = freshDataDir();
    const gateway = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'test/helpers/store-embedded-child.ts'), dataDir],
      { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const exited = once(gateway, 'exit');
    const lines = createInterface({ input: gateway.stdout });
    const [line] = (await once(lines, 'line')) as [string];
    const stale = JSON.parse(line) as { redisPid: number; dovecotPid: number };
    gateway.kill('SIGKILL');
    await exited;
    // The children outlive their parent: that is the situation to recover from.
    expect(await isRunning(stale.redisPid)).toBe(true);
    expect(await isRunning(stale.dovecotPid)).toBe(true);
    const staleProcesses = await processesOf(dataDir);

    const services = await startBoth(dataDir);
    try {
      for (const pid of staleProcesses) expect(await isRunning(pid), `stale pid ${pid}`).toBe(false);
      expect(await checkStoreHealth(services.dovecot.imap, services.dovecot.lmtp)).toEqual({
        imap: true,
        lmtp: true,
      });
      const client = createRedisClient(services.redis.url);
      expect(await client.ping()).toBe('PONG');
      await client.quit();
    } finally {
      await stopBoth(services);
    }
    expect(await processesOf(dataDir)).toEqual([]);
  });

  it('refuse a data directory whose unix sockets would not fit, and say what is missing', async () => {
    const deep = path.join(inject('scratchDir'), 'd'.repeat(90));
    await expect(startEmbeddedRedis({ dataDir: deep, logger })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('choose a shorter MSSGW_DATA_DIR') as unknown,
    });
    await expect(startEmbeddedDovecot({ dataDir: deep, logger })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      message: expect.stringContaining('choose a shorter MSSGW_DATA_DIR') as unknown,
    });
    const dataDir = freshDataDir();
    await expect(
      startEmbeddedRedis({ dataDir, binary: '/nonexistent/redis-server', logger }),
    ).rejects.toMatchObject({
      code: 'DEPENDENCY_MISSING',
    });
    await expect(
      startEmbeddedDovecot({ dataDir, binary: '/nonexistent/dovecot', logger }),
    ).rejects.toMatchObject({
      code: 'DEPENDENCY_MISSING',
    });
  });
});
