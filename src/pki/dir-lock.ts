import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { setTimeout as delay } from 'node:timers/promises';
import { GatewayError } from '../errors/index.js';

/**
 * A cross-process exclusive lock on a folder: `mkdir` is atomic on every local file system, so
 * exactly one of several processes creates the lock folder. Used so that `npm start`, `npm test`
 * workers and `mssgw dev-pki` running at once never interleave their writes to the development PKI.
 */

export interface DirLockOptions {
  /** A lock older than this is left over from a crashed process and is broken. Default 60 s. */
  readonly staleMs?: number;
  /** Give up waiting after this long. Default 180 s (past one stale period plus a generation). */
  readonly timeoutMs?: number;
  /** How often a waiter looks again. Polling, because fs.watch is unreliable on network mounts. */
  readonly pollMs?: number;
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

async function tryAcquire(lockDir: string): Promise<boolean> {
  try {
    await mkdir(lockDir);
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  }
  // Who holds it, for a human looking at a stuck lock; never read back.
  await writeFile(`${lockDir}/owner`, `${process.pid}\n`).catch(() => undefined);
  return true;
}

/** Breaks the lock when its holder has not finished within `staleMs` (crashed or killed). */
async function breakIfStale(lockDir: string, staleMs: number): Promise<void> {
  let mtimeMs: number;
  try {
    ({ mtimeMs } = await stat(lockDir));
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return; // released meanwhile
    throw err;
  }
  if (Date.now() - mtimeMs < staleMs) return;
  // Renaming first means only one waiter removes this stale lock; the others get ENOENT and retry.
  const doomed = `${lockDir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockDir, doomed);
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return;
    throw err;
  }
  await rm(doomed, { recursive: true, force: true });
}

/**
 * Runs `fn` while holding the lock folder `lockDir` (its parent must exist). `shouldSkip` is asked
 * before each attempt, and once more after the lock is taken: when another process already did the
 * work, it returns a value and the lock is released without running `fn`.
 */
export async function withDirLock<T>(
  lockDir: string,
  fn: () => Promise<T>,
  shouldSkip: () => Promise<T | undefined> = () => Promise.resolve(undefined),
  options: DirLockOptions = {},
): Promise<T> {
  const { staleMs = 60_000, timeoutMs = 180_000, pollMs = 50 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const skipped = await shouldSkip();
    if (skipped !== undefined) return skipped;
    if (await tryAcquire(lockDir)) break;
    await breakIfStale(lockDir, staleMs);
    if (Date.now() > deadline) {
      throw new GatewayError('INTERNAL', 'timed out waiting for a lock', { lockDir, timeoutMs });
    }
    await delay(pollMs);
  }
  try {
    const skipped = await shouldSkip();
    return skipped !== undefined ? skipped : await fn();
  } finally {
    await rm(lockDir, { recursive: true, force: true });
  }
}
