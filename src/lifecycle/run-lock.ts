import { randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import { LuaScript } from '../registry/index.js';

/**
 * One lifecycle run at a time across every gateway process: a Redis lease (SET NX PX) renewed while
 * the run goes on. A process killed with -9 stops renewing; its lease lapses after `ttlMs` and the
 * run can be taken up again (BullMQ hands the stalled job to another worker about then).
 */
const RENEW = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`);

const RELEASE = new LuaScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

export class RunLock {
  readonly #redis: Redis;
  readonly #key: string;
  readonly #ttlMs: number;
  readonly #token = randomUUID();
  #timer: NodeJS.Timeout | undefined;
  #held = false;

  constructor(options: { redis: Redis; key: string; ttlMs: number }) {
    this.#redis = options.redis;
    this.#key = options.key;
    this.#ttlMs = options.ttlMs;
  }

  /** False while the lease has not been renewed in time (the run must stop: another may start). */
  get held(): boolean {
    return this.#held;
  }

  /** True when this process now holds the lease; renewed every third of its TTL until released. */
  async acquire(): Promise<boolean> {
    const ok = await this.#redis.set(this.#key, this.#token, 'PX', this.#ttlMs, 'NX');
    if (ok !== 'OK') return false;
    this.#held = true;
    this.#timer = setInterval(() => void this.#renew(), Math.max(100, Math.floor(this.#ttlMs / 3)));
    this.#timer.unref();
    return true;
  }

  /**
   * Tries for up to `waitMs`: the lease of a process killed mid-run lapses within its TTL, and the
   * process taking the run over (BullMQ's stalled job) should not fail for arriving a moment early.
   */
  async acquireWithin(waitMs: number): Promise<boolean> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      if (await this.acquire()) return true;
      if (Date.now() >= deadline) return false;
      const pause = Math.min(250, Math.max(10, Math.floor(this.#ttlMs / 8)));
      await new Promise((resolve) => setTimeout(resolve, pause));
    }
  }

  async #renew(): Promise<void> {
    try {
      const renewed = await RENEW.run(this.#redis, [this.#key], [this.#token, String(this.#ttlMs)]);
      if (renewed !== 1) this.#lose();
    } catch {
      // Redis unreachable: the lease may lapse before the next try; stop claiming it.
      this.#lose();
    }
  }

  #lose(): void {
    this.#held = false;
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async release(): Promise<void> {
    const wasHeld = this.#held;
    this.#lose();
    if (wasHeld) await RELEASE.run(this.#redis, [this.#key], [this.#token]).catch(() => undefined);
  }
}
