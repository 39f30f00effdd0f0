// No vitest import here: the crash test's child process (lifecycle-child.ts) uses this file too.
import type { Redis } from 'ioredis';
import type { Clock } from '../../src/shared/index.js';
import type {
  DirectoryAnswer,
  InactivityEvidence,
  LifecyclePublisher,
  PublicationStateReader,
  PublicationView,
  WarningDelivery,
} from '../../src/lifecycle/index.js';
import type { PublicationStateName } from '../../src/publication/index.js';
import type { BalSummary } from '../../src/registry/index.js';

/** A clock the test moves by hand (STYLE.md convention 4). */
export class TestClock implements Clock {
  #ms: number;
  constructor(start: Date | string) {
    this.#ms = new Date(start).getTime();
  }
  now(): Date {
    return new Date(this.#ms);
  }
  set(at: Date | number): void {
    this.#ms = new Date(at).getTime();
  }
  advance(ms: number): void {
    this.#ms += ms;
  }
}

/** One call the lifecycle made to the publication module. */
export interface DirectoryCall {
  readonly op: 'unpublishInactive' | 'republish';
  readonly address: string;
  readonly at: string;
  readonly evidence?: InactivityEvidence;
}

interface Entry {
  state: PublicationStateName;
  since: string;
  redListed?: boolean;
}

/**
 * Stands in for the publication module (another team's, issue #5) behind the two interfaces the
 * lifecycle defines: it keeps a publication state per mailbox and a log of every call, in Redis, so
 * that several processes (a runner killed with -9 and the one taking over) share one "directory".
 * A call's effect and its log entry are written together (MULTI) before the answer, as a directory
 * that applied a change and whose answer may still be lost.
 */
export class RecordingDirectory implements LifecyclePublisher, PublicationStateReader {
  readonly #redis: Redis;
  readonly #stateKey: string;
  readonly #callsKey: string;
  readonly #clock: Clock;
  /** Called after a change is applied and logged, before the answer (the crash test blocks here). */
  beforeAnswer: ((call: DirectoryCall, count: number) => Promise<void>) | undefined;
  /** Addresses whose unpublication the directory refuses (ok: false). */
  readonly refuse = new Set<string>();

  constructor(options: { redis: Redis; prefix: string; clock: Clock }) {
    this.#redis = options.redis;
    this.#stateKey = `${options.prefix}test-directory:state`;
    this.#callsKey = `${options.prefix}test-directory:calls`;
    this.#clock = options.clock;
  }

  /** Test set-up: the publication state of a mailbox. */
  async set(address: string, state: PublicationStateName, since: Date, redListed = false): Promise<void> {
    const entry: Entry = { state, since: since.toISOString(), ...(redListed ? { redListed } : {}) };
    await this.#redis.hset(this.#stateKey, address, JSON.stringify(entry));
  }

  async stateOf(address: string): Promise<PublicationStateName | undefined> {
    const json = await this.#redis.hget(this.#stateKey, address);
    return json === null ? undefined : (JSON.parse(json) as Entry).state;
  }

  async calls(): Promise<DirectoryCall[]> {
    return (await this.#redis.lrange(this.#callsKey, 0, -1)).map((j) => JSON.parse(j) as DirectoryCall);
  }

  async statesOf(bals: readonly BalSummary[]): Promise<Array<PublicationView | undefined>> {
    if (bals.length === 0) return [];
    const values = await this.#redis.hmget(this.#stateKey, ...bals.map((b) => b.address));
    return values.map((json) => {
      if (json === null) return undefined;
      const e = JSON.parse(json) as Entry;
      return { state: e.state, since: e.since, ...(e.redListed ? { redListed: true } : {}) };
    });
  }

  async unpublishInactive(address: string, evidence: InactivityEvidence): Promise<DirectoryAnswer> {
    const call: DirectoryCall = { op: 'unpublishInactive', address, at: this.#now(), evidence };
    if (this.refuse.has(address)) {
      await this.#redis.rpush(this.#callsKey, JSON.stringify(call));
      return { ok: false, response: '422 Unprocessable Entity: test refusal' };
    }
    const entry: Entry = { state: 'unpublished-inactive', since: this.#now() };
    const [[, count]] = (await this.#redis
      .multi()
      .rpush(this.#callsKey, JSON.stringify(call))
      .hset(this.#stateKey, address, JSON.stringify(entry))
      .exec()) as [[Error | null, number], unknown];
    await this.beforeAnswer?.(call, count);
    return { ok: true, response: '200 OK: telecom deleted' };
  }

  async republish(address: string): Promise<DirectoryAnswer> {
    const call: DirectoryCall = { op: 'republish', address, at: this.#now() };
    await this.#redis.rpush(this.#callsKey, JSON.stringify(call));
    if ((await this.stateOf(address)) !== 'unpublished-inactive') {
      return { ok: false, response: 'refused: not unpublished for inactivity' };
    }
    await this.set(address, 'published', this.#clock.now());
    return { ok: true, response: '200 OK: telecom inserted' };
  }

  #now(): string {
    return this.#clock.now().toISOString();
  }
}

/** Warnings recorded in a Redis list (for runs in child processes, where no mailbox is read). */
export class RedisWarnings implements WarningDelivery {
  readonly #redis: Redis;
  readonly #key: string;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#key = `${prefix}test-warnings`;
  }

  async deliver(address: string, message: Buffer): Promise<void> {
    if (!message.includes('Subject: ')) throw new Error('not a message');
    await this.#redis.rpush(this.#key, address);
  }

  async delivered(): Promise<string[]> {
    return this.#redis.lrange(this.#key, 0, -1);
  }
}
