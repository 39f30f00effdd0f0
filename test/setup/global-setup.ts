import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { TestProject } from 'vitest/node';
import type {} from 'vitest';
import { createLogger } from '../../src/observability/index.js';
import { ensureDevPki } from '../../src/pki/index.js';
import { startEmbeddedDovecot, type EmbeddedDovecot } from '../../src/store/index.js';
import { freePort } from '../helpers/free-port.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** redis:// URL of the Redis the whole run shares (tests isolate with unique key prefixes). */
    redisUrl: string;
    /** Scratch folder of this run (each test makes its own subfolder). */
    scratchDir: string;
    /** Development PKI generated for this run (certs-dev layout: ca/, NAME.crt, whitelist.xml). */
    pkiDir: string;
    /**
     * The embedded Dovecot the whole run shares (tests isolate with unique mailbox names): plain
     * IMAP on loopback, LMTP on a unix socket, and the master user that opens any mailbox.
     */
    dovecot: {
      imap: { host: string; port: number };
      lmtp: { path: string };
      masterUser: string;
      masterPassword: string;
    };
  }
}

let redis: ChildProcess | undefined;
let dovecot: EmbeddedDovecot | undefined;
let scratch = '';

async function waitForRedis(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
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

function stopRedis(child: ChildProcess | undefined): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGTERM');
  });
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  scratch = mkdtempSync(path.join(tmpdir(), 'mssgw-test-'));
  // mkdtemp makes the folder 0700; Dovecot's mail and auth users must be able to traverse it to
  // reach the data directories tests create inside (search only, no listing).
  chmodSync(scratch, 0o711);
  const port = await freePort();
  redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', scratch],
    { stdio: 'ignore' },
  );
  const url = `redis://127.0.0.1:${port}`;
  try {
    await waitForRedis(url);
    dovecot = await startEmbeddedDovecot({
      dataDir: path.join(scratch, 'store'),
      logger: createLogger({ level: 'warn', name: 'test-dovecot' }),
    });
  } catch (err) {
    await stopRedis(redis); // no teardown runs when setup fails
    throw err;
  }
  project.provide('redisUrl', url);
  project.provide('scratchDir', scratch);
  const pkiDir = path.join(scratch, 'pki');
  await ensureDevPki(pkiDir);
  project.provide('pkiDir', pkiDir);
  project.provide('dovecot', {
    imap: { host: dovecot.imap.host, port: dovecot.imap.port },
    lmtp: { path: dovecot.lmtp.path },
    masterUser: dovecot.masterUser,
    masterPassword: dovecot.masterPassword,
  });
  return async () => {
    await dovecot?.stop();
    await stopRedis(redis);
    rmSync(scratch, { recursive: true, force: true });
  };
}
