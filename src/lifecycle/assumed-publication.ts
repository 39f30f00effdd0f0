import type { Redis } from 'ioredis';
import type { BalSummary } from '../registry/index.js';
import { LifecycleKeys } from './lifecycle-keys.js';
import type { PublicationStateReader, PublicationView } from './lifecycle-ports.js';

/**
 * A stand-in for the publication store while none is wired: every active mailbox counts as published
 * since its creation, unless the lifecycle itself unpublished it for inactivity; suspended and deleted
 * ones as unpublished. It knows nothing of the red list. `mssgw lifecycle preview` says when it uses it.
 */
export class AssumedPublication implements PublicationStateReader {
  readonly #redis: Redis;
  readonly #keys: LifecycleKeys;

  constructor(options: { redis: Redis; prefix: string }) {
    this.#redis = options.redis;
    this.#keys = new LifecycleKeys(options.prefix);
  }

  async statesOf(bals: readonly BalSummary[]): Promise<PublicationView[]> {
    if (bals.length === 0) return [];
    const flagged = await this.#redis.smismember(
      this.#keys.unpublishedInactive,
      ...bals.map((b) => b.address),
    );
    return bals.map((bal, i): PublicationView => {
      if (bal.status !== 'active') return UNPUBLISHED;
      if (flagged[i] === 1) return UNPUBLISHED_INACTIVE;
      return { state: 'published', since: bal.createdAt };
    });
  }
}

// Shared by every mailbox in these states: views are read, never changed (a run reads a million).
const UNPUBLISHED: PublicationView = Object.freeze({ state: 'unpublished' });
const UNPUBLISHED_INACTIVE: PublicationView = Object.freeze({ state: 'unpublished-inactive' });
