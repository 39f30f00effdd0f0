import type { Redis } from 'ioredis';
import { LifecycleKeys } from '../src/lifecycle/index.js';
import type { ActivityChannel, BalType } from '../src/registry/index.js';
import { RegistryKeys } from '../src/registry/registry-keys.js';

/**
 * A registry of a million mailboxes in seconds, for the benchmarks: creating them through
 * BalRegistry costs a script and a check per mailbox (76 to 111 s per 100,000 on the shared
 * machine). This writes, in large pipelines, the keys those calls would leave behind, named by the
 * registry's own key builders (registry-keys.ts) so that the layout cannot drift; the test
 * test/integration/lifecycle-registry-seed.test.ts checks that a seeded sample reads back, key by key
 * and through the registry's API, as the same mailboxes created, used, suspended and deleted through
 * BalRegistry. Only what these benchmarks need: no rights, no metadata but the red-list flag.
 */
export interface SeedBal {
  /** Canonical (lower-case) address in one of the registry's domains. */
  readonly address: string;
  readonly type: BalType;
  /** A valid national id for the type (bal.ts). */
  readonly owner: string;
  /** Creation instant (ISO), as BalRegistry.create writes it from its clock. */
  readonly createdAt: string;
  readonly listeRouge?: boolean;
  /** One use, as BalRegistry.recordActivity records it, after the creation and before `change`. */
  readonly used?: { readonly channel: ActivityChannel; readonly at: number };
  /** A suspension (without reason) or deletion after the use, as BalRegistry.suspend / delete. */
  readonly change?: { readonly to: 'suspended' | 'deleted'; readonly at: string };
  /** Lifecycle state: the last inactivity warning (ms), as the daily run records it. */
  readonly warnedAt?: number;
  /** Lifecycle state: unpublished for inactivity by the daily run. */
  readonly unpublishedInactive?: boolean;
}

/** Mailboxes per pipeline: about 6 commands each. */
const DEFAULT_BATCH = 5000;

/** Writes `bals` under `prefix` (configuration `redis.prefix`); returns how many were written. */
export async function seedRegistry(
  redis: Redis,
  prefix: string,
  bals: Iterable<SeedBal>,
  batch = DEFAULT_BATCH,
): Promise<number> {
  const keys = new RegistryKeys(prefix);
  const lifecycle = new LifecycleKeys(prefix);
  let pending: SeedBal[] = [];
  let written = 0;
  const flush = async () => {
    if (pending.length === 0) return;
    const pipeline = redis.pipeline();
    // The creation and transition scripts move counts by one each time (HINCRBY, so a count that
    // went up and down again stays as "0"): summed per pipeline, every field touched is written.
    const counts = new Map<string, number>();
    const count = (field: string, by: number) => counts.set(field, (counts.get(field) ?? 0) + by);
    for (const bal of pending) {
      const balKey = keys.bal(bal.address);
      // CREATE_BAL (lua-script.ts) with the metadata BalRegistry.create always sets (listeRouge).
      pipeline.hset(balKey, {
        address: bal.address,
        type: bal.type,
        owner: bal.owner,
        status: 'active',
        createdAt: bal.createdAt,
        updatedAt: bal.createdAt,
        listeRouge: bal.listeRouge === true ? '1' : '0',
      });
      pipeline.zadd(keys.index, 0, bal.address);
      count(`active:${bal.type}`, 1);
      if (bal.type === 'PER') pipeline.sadd(keys.personOwns(bal.owner), bal.address);
      // RECORD_ACTIVITY (rights-scripts.ts).
      if (bal.used) {
        const at = String(bal.used.at);
        pipeline.hset(keys.activity(bal.address), bal.used.channel, at, 'lastActivityAt', at);
        if (bal.change?.to !== 'deleted') pipeline.zadd(keys.lastActivity, 'GT', at, bal.address);
      }
      // TRANSITION_BAL (lua-script.ts) and DELETE_BAL (rights-scripts.ts): no rights to drop here.
      if (bal.change) {
        const { to, at } = bal.change;
        pipeline.hset(balKey, {
          status: to,
          updatedAt: at,
          ...(to === 'suspended' ? { suspendedAt: at } : { deletedAt: at }),
        });
        count(`active:${bal.type}`, -1);
        count(`${to}:${bal.type}`, 1);
        if (to === 'deleted' && bal.type === 'PER') pipeline.srem(keys.personOwns(bal.owner), bal.address);
      }
      if (bal.warnedAt !== undefined) pipeline.hset(lifecycle.warned, bal.address, String(bal.warnedAt));
      if (bal.unpublishedInactive === true) pipeline.sadd(lifecycle.unpublishedInactive, bal.address);
    }
    for (const [field, by] of counts) pipeline.hincrby(keys.counts, field, by);
    const replies = (await pipeline.exec()) ?? [];
    const failed = replies.find(([err]) => err !== null);
    if (failed) throw failed[0] as Error;
    written += pending.length;
    pending = [];
  };
  for (const bal of bals) {
    pending.push(bal);
    if (pending.length >= batch) await flush();
  }
  await flush();
  return written;
}
