import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { GroupFsync } from '../../src/delivery/group-fsync.js';

/**
 * Group commit of directory fsyncs on a real directory: concurrent callers share fsyncs, each
 * directory keeps one descriptor, and a failed fsync is reported to its callers and leaves the
 * next one working (on a descriptor opened again).
 */

const calls = { syncs: 0, failNext: false, restore: () => {} };
beforeAll(async () => {
  const probe = await open(os.devNull, 'r');
  const proto = Object.getPrototypeOf(probe) as { sync: () => Promise<void> };
  await probe.close();
  const sync = proto.sync;
  proto.sync = async function (this: typeof proto) {
    calls.syncs += 1;
    if (calls.failNext) {
      calls.failNext = false;
      throw Object.assign(new Error('EIO: i/o error, fsync'), { code: 'EIO' });
    }
    return sync.call(this);
  };
  calls.restore = () => (proto.sync = sync);
});
afterAll(() => calls.restore());

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'group-fsync-'));
  calls.syncs = 0;
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

describe('GroupFsync', () => {
  it('lets callers arriving during an fsync share the next one', async () => {
    const group = new GroupFsync();
    await Promise.all(Array.from({ length: 10 }, () => group.sync(dir)));
    // The first starts one; the nine arriving while it runs share a second.
    expect(calls.syncs).toBe(2);
    await group.sync(dir);
    expect(calls.syncs).toBe(3);
  });

  it('reports a failed fsync to its callers, and the next one works', async () => {
    const group = new GroupFsync();
    await group.sync(dir);
    calls.failNext = true;
    await expect(group.sync(dir)).rejects.toThrow(/EIO/);
    await expect(group.sync(dir)).resolves.toBeUndefined();
    expect(calls.syncs).toBe(3);
  });

  it('fails for a directory that cannot be opened, then works once it exists', async () => {
    const group = new GroupFsync();
    const missing = path.join(dir, 'later');
    await expect(group.sync(missing)).rejects.toThrow(/ENOENT/);
    mkdirSync(missing);
    await expect(group.sync(missing)).resolves.toBeUndefined();
  });
});
