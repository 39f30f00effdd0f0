import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';
import { eventually } from './mailbox.js';

/** One process of the set: its port and the child to kill. */
export interface RedisProcess {
  readonly port: number;
  readonly child: ChildProcess;
}

/**
 * A real Redis Sentinel deployment on loopback, as an operator runs one: a primary, a replica and
 * three `redis-sentinel` processes (Debian package) monitoring the primary under `masterName`
 * with quorum 2 and a 1 s down-after, so that a killed primary is failed over within seconds.
 */
export interface SentinelSet {
  readonly masterName: string;
  readonly primary: RedisProcess;
  readonly replica: RedisProcess;
  readonly sentinels: readonly RedisProcess[];
  /** The primary the sentinels name now. */
  currentPrimaryPort(): Promise<number>;
  stop(): Promise<void>;
}

function client(port: number): Redis {
  const c = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  });
  c.on('error', () => {}); // refused while the process starts: the caller retries
  return c;
}

async function ask<T>(port: number, fn: (c: Redis) => Promise<T>): Promise<T | undefined> {
  const c = client(port);
  try {
    await c.connect();
    return await fn(c);
  } catch {
    return undefined;
  } finally {
    c.disconnect();
  }
}

async function startRedis(dir: string, name: string, extra: string[]): Promise<RedisProcess> {
  const port = await freePort();
  const child = spawn(
    'redis-server',
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
      ...extra,
    ],
    { stdio: 'ignore' },
  );
  const up = await eventually(
    () => ask(port, (c) => c.ping()),
    (r) => r === 'PONG',
  );
  if (up !== 'PONG') throw new Error(`${name} redis-server did not answer on ${port}`);
  return { port, child };
}

async function startSentinel(dir: string, index: number, masterName: string, primaryPort: number) {
  const port = await freePort();
  const conf = path.join(dir, `sentinel-${index}.conf`);
  // Sentinel rewrites its configuration file with what it learns (replicas, other sentinels).
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${primaryPort} 2`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 10000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'),
  );
  const child = spawn('redis-sentinel', [conf], { stdio: 'ignore' });
  const up = await eventually(
    () => ask(port, (c) => c.ping()),
    (r) => r === 'PONG',
  );
  if (up !== 'PONG') throw new Error(`sentinel ${index} did not answer on ${port}`);
  return { port, child };
}

function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

export async function startSentinelSet(dir: string, masterName = 'mssgw'): Promise<SentinelSet> {
  const started: RedisProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((p) => stopProcess(p.child)));
  };
  try {
    const primary = await startRedis(dir, 'primary', []);
    started.push(primary);
    const replica = await startRedis(dir, 'replica', ['--replicaof', '127.0.0.1', String(primary.port)]);
    started.push(replica);
    const linked = await eventually(
      () => ask(replica.port, (c) => c.info('replication')),
      (info) => /master_link_status:up/.test(info ?? ''),
    );
    if (!/master_link_status:up/.test(linked ?? '')) throw new Error('the replica did not sync');
    const sentinels: RedisProcess[] = [];
    for (let i = 0; i < 3; i++) {
      const s = await startSentinel(dir, i, masterName, primary.port);
      started.push(s);
      sentinels.push(s);
    }
    // A failover needs the sentinels to know the replica and each other (hello messages every 2 s).
    for (const s of sentinels) {
      const known = await eventually(
        () =>
          ask(s.port, async (c) => {
            const replicas = (await c.call('SENTINEL', 'REPLICAS', masterName)) as unknown[];
            const others = (await c.call('SENTINEL', 'SENTINELS', masterName)) as unknown[];
            return replicas.length === 1 && others.length === 2;
          }),
        (ok) => ok === true,
      );
      if (known !== true) throw new Error(`sentinel on ${s.port} did not discover the set`);
    }
    return {
      masterName,
      primary,
      replica,
      sentinels,
      async currentPrimaryPort() {
        for (const s of sentinels) {
          const addr = await ask(
            s.port,
            (c) => c.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', masterName) as Promise<[string, string]>,
          );
          if (addr) return Number(addr[1]);
        }
        throw new Error('no sentinel answered');
      },
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}
