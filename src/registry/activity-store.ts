import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { balNotFound, callRedis, pipelineReplies } from './redis-call.js';
import type { RegistryKeys } from './registry-keys.js';
import { RECORD_ACTIVITY } from './rights-scripts.js';

/**
 * Last use of each mailbox (MSSANTE.md "Lifecycle and indicators": a successful authentication over
 * IMAP, submission or application mTLS, or a submission; receiving mail is not use). Feeds the
 * 45-day unpublication rule through the `bals:last-activity` index and the monthly indicators.
 */
export const ACTIVITY_CHANNELS = ['imap', 'submission', 'application'] as const;
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
