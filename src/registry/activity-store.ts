import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { balNotFound, callRedis, pipelineReplies } from './redis-call.js';
import { RegistryKeys } from './registry-keys.js';
import { RECORD_ACTIVITY } from './rights-scripts.js';

/**
 * Last use of each mailbox (MSSANTE.md "Lifecycle and indicators": a successful authentication over
 * IMAP, submission or application mTLS, or a submission; receiving mail is not use; in the portal, the
 * owner's "je garde cette adresse", issue #13). Feeds the
 * 45-day unpublication rule through the `bals:last-activity` index and the monthly indicators.
 */
export const ACTIVITY_CHANNELS = ['imap', 'submission', 'application', 'portal'] as const;
export type ActivityChannel = (typeof ACTIVITY_CHANNELS)[number];

export interface BalActivity {
  readonly address: string;
  /** Latest use on any channel (ISO); absent when never used. */
  readonly lastActivityAt?: string;
  /** Latest use per channel (ISO), channels never used left out. */
  readonly channels: Partial<Record<ActivityChannel, string>>;
}

export class ActivityStore {
  readonly #redis: Redis;
  readonly #keys: RegistryKeys;

  constructor(options: { redis: Redis; keys: RegistryKeys }) {
    this.#redis = options.redis;
    this.#keys = options.keys;
  }

  /** A store over the registry of `prefix` (configuration `redis.prefix`), for readers outside it. */
  static withPrefix(redis: Redis, prefix: string): ActivityStore {
    return new ActivityStore({ redis, keys: new RegistryKeys(prefix) });
  }

  /**
   * One round trip (every authentication calls it). Timestamps only move forward. False when there
   * is no such mailbox or it is deleted: nothing is recorded then.
   */
  async record(address: string, channel: ActivityChannel, at: Date): Promise<boolean> {
    const ms = at.getTime();
    if (!ACTIVITY_CHANNELS.includes(channel) || Number.isNaN(ms)) {
      throw new GatewayError('INTERNAL', `activity record with channel ${String(channel)} at ${String(at)}`, {
        address,
      });
    }
    const reply = await callRedis(() =>
      RECORD_ACTIVITY.run(
        this.#redis,
        [this.#keys.bal(address), this.#keys.activity(address), this.#keys.lastActivity],
        [address, channel, String(ms)],
      ),
    );
    return reply === 1;
  }

  /**
   * Latest use (ms) of each address, in order; undefined for a mailbox never used (or deleted: the
   * index keeps live BALs only). One round trip (ZMSCORE) per call, whatever the batch size, so the
   * daily lifecycle run reads a million mailboxes in a few thousand round trips.
   */
  async lastActivityOf(addresses: readonly string[]): Promise<Array<number | undefined>> {
    if (addresses.length === 0) return [];
    const scores = await callRedis(() => this.#redis.zmscore(this.#keys.lastActivity, ...addresses));
    return scores.map((score) => (score === null ? undefined : Number(score)));
  }

  /** The mailbox's activity; BAL_NOT_FOUND when there is no such mailbox (a deleted one keeps it). */
  async read(address: string): Promise<BalActivity> {
    const pipeline = this.#redis
      .pipeline()
      .hexists(this.#keys.bal(address), 'status')
      .hgetall(this.#keys.activity(address));
    const [exists, hash] = pipelineReplies(await callRedis(() => pipeline.exec())) as [
      number,
      Record<string, string>,
    ];
    if (exists !== 1) throw balNotFound(address);
    const channels: Partial<Record<ActivityChannel, string>> = {};
    for (const channel of ACTIVITY_CHANNELS) {
      const value = hash[channel];
      if (value !== undefined) channels[channel] = toIso(value);
    }
    const last = hash.lastActivityAt;
    return { address, ...(last === undefined ? {} : { lastActivityAt: toIso(last) }), channels };
  }
}

function toIso(ms: string): string {
  return new Date(Number(ms)).toISOString();
}
