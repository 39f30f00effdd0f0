import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { DAY_MS, LifecycleKeys, dayInZone } from '../../src/lifecycle/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';

const repoRoot = path.resolve(import.meta.dirname, '../..');
const T0 = Date.parse('2026-01-05T02:15:00.000Z');
const HOUR = 3_600_000;
const runDay = (d: number) => T0 + d * DAY_MS;

interface Child {
  readonly process: ChildProcess;
  readonly name: string;
  /** Resolves with the first line (stdout event or stderr log) satisfying `predicate`, seen or to come. */
  waitFor(
    predicate: (e: Record<string, unknown>) => boolean,
    timeoutMs?: number,
  ): Promise<Record<string, unknown>>;
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  tail(): string;
}

const children: Child[] = [];

/** The lifecycle job in its own process (test/helpers/lifecycle-child.ts). */
function startChild(name: string, env: Record<string, string>): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/lifecycle-child.ts'], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', LC_NAME: name, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const events: Array<Record<string, unknown>> = [];
  const listeners = new Set<(e: Record<string, unknown>) => void>();
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => {
      lines.push(line);
      if (!line.startsWith('{')) return;
      const event = JSON.parse(line) as Record<string, unknown>;
      events.push(event);
      for (const l of listeners) l(event);
    });
  }
  const tail = () => lines.slice(-30).join('\n');
  const handle: Child = {
    process: child,
    name,
    tail,
    exited: () => exit,
    waitFor: (predicate, timeoutMs = 90_000) => {
      const seen = events.find(predicate);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          listeners.delete(listener);
          reject(new Error(`${name}: awaited event not seen within ${timeoutMs} ms:\n${tail()}`));
        }, timeoutMs);
        const listener = (e: Record<string, unknown>) => {
          if (!predicate(e)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          resolve(e);
        };
        listeners.add(listener);
        void exit.then(({ code, signal }) => {
          if (!listeners.has(listener)) return;
          clearTimeout(timer);
          listeners.delete(listener);
          reject(new Error(`${name} exited (code ${code}, signal ${signal}) first:\n${tail()}`));
        });
      });
    },
  };
  children.push(handle);
  return handle;
}

let fixture: LifecycleFixture | undefined;
afterEach(async (context) => {
  for (const c of children.splice(0)) {
    if (context.task.result?.state === 'fail') console.error(`--- ${c.name} ---\n${c.tail()}`);
    if (c.process.exitCode === null && c.process.signalCode === null) {
      c.process.kill('SIGTERM');
      await Promise.race([c.exited(), new Promise((r) => setTimeout(r, 30_000).unref())]);
      c.process.kill('SIGKILL');
    }
  }
  await fixture?.close();
  fixture = undefined;
});

describe('daily run killed halfway', () => {
  it('is taken up by another process where it stopped, without calling the directory twice for any mailbox', async () => {
    const f = startLifecycleFixture(new Date(T0 - 6 * HOUR).toISOString());
    fixture = f;
    const bals: string[] = [];
    for (let i = 0; i < 12; i += 1) {
      const address = uniqueAddress(`idle${String(i).padStart(2, '0')}`);
      await f.registry.create({ address, type: 'PER', owner: '810000000001' }, ACTOR);
      await f.directory.set(address, 'published', f.clock.now());
      bals.push(address);
    }
    bals.sort();
    f.clock.set(runDay(30));
    expect((await f.runner.runOnce()).outcomes).toEqual({ warned: 12 });

    const env = {
      LC_REDIS_URL: inject('redisUrl'),
      LC_PREFIX: f.prefix,
      LC_NOW: new Date(runDay(45)).toISOString(),
      LC_JOURNAL_DIR: path.join(f.dataDir, 'journal'),
    };
    // The first process: the fifth unpublication reaches the directory, then the process dies.
    const first = startChild('first', { ...env, LC_BLOCK_AT: '5', LC_TRIGGER: '1' });
    const blocked = await first.waitFor((e) => e.event === 'directory.blocked');
    expect(blocked.address).toBe(bals[4]);
    first.process.kill('SIGKILL');
    expect(await first.exited()).toEqual({ code: null, signal: 'SIGKILL' });

    const keys = new LifecycleKeys(f.prefix);
    const runId = dayInZone(runDay(45), 'Europe/Paris');
    expect(await f.redis.hmget(keys.run(runId), 'phase', 'total', 'cursor', 'inflight')).toEqual([
      'executing',
      '12',
      '4',
      '4',
    ]);
    expect((await f.directory.calls()).map((c) => c.address)).toEqual(bals.slice(0, 5));

    // A second process: BullMQ hands it the stalled job once the first one's lock lapses.
    const second = startChild('second', env);
    const finished = await second.waitFor((e) => e.event === 'lifecycle.run.finished', 90_000);
    expect(finished).toMatchObject({ runId, resumed: true, planned: 12, outcomes: { unpublished: 12 } });

    const calls = await f.directory.calls();
    expect(calls.every((c) => c.op === 'unpublishInactive')).toBe(true);
    expect(calls.map((c) => c.address)).toEqual(bals);
    for (const address of bals) expect(await f.directory.stateOf(address)).toBe('unpublished-inactive');

    const unpublished = f.events('lifecycle.unpublished');
    expect(unpublished.map((e) => e.address).sort()).toEqual(bals);
    expect(unpublished.filter((e) => e.resumedInFlight === true).map((e) => e.address)).toEqual([bals[4]]);
    expect(f.events('lifecycle.run.started').map((e) => e.resumed)).toEqual([false, false, true]);
    expect(await f.redis.hmget(keys.run(runId), 'phase', 'cursor')).toEqual(['done', '12']);
  });
});
