import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { freePort } from '../helpers/free-port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** redis:// URL of the Redis the whole run shares (tests isolate with unique key prefixes). */
    redisUrl: string;
    /** Scratch folder of this run (each test makes its own subfolder). */
    scratchDir: string;
  }
}

let redis: ChildProcess | undefined;
let scratch = '';

async function waitForRedis(url: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    client.on('error', () => {}); // connection refused while redis-server starts: retried below
    try {
      await client.connect();
      await client.ping();
      client.disconnect();
      return;
    } catch (err) {
      client.disconnect();
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  scratch = mkdtempSync(path.join(tmpdir(), 'mssgw-test-'));
  const port = await freePort();
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', scratch],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  await waitForRedis(url);
  project.provide('redisUrl', url);
  project.provide('scratchDir', scratch);
  return async () => {
    redis?.kill('SIGTERM');
    rmSync(scratch, { recursive: true, force: true });
  };
}
