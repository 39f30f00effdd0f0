import type { Redis } from 'ioredis';
import { LifecycleKeys } from '../src/lifecycle/index.js';
import type { ActivityChannel, BalType } from '../src/registry/index.js';
import { RegistryKeys } from '../src/registry/registry-keys.js';

/**
 * A registry of a million mailboxes in seconds, for the benchmarks: creating them through
 * BalRegistry costs a script and a check per mailbox (76 to 111 s per 100,000 on the shared
 * machine). This writes, in large batches, the keys those calls would leave behind, named by the
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

/**
 * Mailboxes per batch: three commands each, and a few for the whole batch. One batch is one script,
 * which blocks the server a few milliseconds.
 */
const DEFAULT_BATCH = 2000;

/**
 * Runs a batch of commands sent as one script: ARGV is, per command, its length then its words.
 * A pipeline would cost the client a command object and a reply per command (about 60 µs a mailbox
 * on the shared machine, a minute per million); this costs it the arguments only.
 */
const APPLY = `
local i, n = 1, #ARGV
while i <= n do
  local len = tonumber(ARGV[i])
  redis.call(unpack(ARGV, i + 1, i + len))
  i = i + len + 1
end
return 1
`;

/** The commands of a batch, flattened for APPLY. */
class Batch {
  readonly args: string[] = [];
  call(...words: string[]): void {
    this.args.push(String(words.length));
    for (const w of words) this.args.push(w);
  }

  /** `head` followed by `tail` a thousand words at a time (Lua's unpack is bounded). */
  callSpread(head: readonly string[], tail: readonly string[]): void {
    for (let i = 0; i < tail.length; i += 1000) this.call(...head, ...tail.slice(i, i + 1000));
  }
}

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
    const batch = new Batch();
    // Each mailbox's final state, written once; keys shared by all (index, counts, activity index,
    // lifecycle state) get one command per batch with every member.
    const index: string[] = [];
    const lastActivity: string[] = [];
    const warned: string[] = [];
    const unpublished: string[] = [];
    // The creation and transition scripts move counts by one each time (HINCRBY, so a count that
    // went up and down again stays as "0"): summed per batch, every field touched is written.
    const counts = new Map<string, number>();
    const count = (field: string, by: number) => counts.set(field, (counts.get(field) ?? 0) + by);
    for (const bal of pending) {
      const { address, change } = bal;
      // CREATE_BAL (lua-script.ts) with the metadata BalRegistry.create always sets (listeRouge),
      // then TRANSITION_BAL / DELETE_BAL's fields (rights-scripts.ts; no reason, no rights to drop).
      const fields = [
        ['address', address],
        ['type', bal.type],
        ['owner', bal.owner],
        ['status', change?.to ?? 'active'],
        ['createdAt', bal.createdAt],
        ['updatedAt', change?.at ?? bal.createdAt],
        ['listeRouge', bal.listeRouge === true ? '1' : '0'],
        ...(change === undefined
          ? []
          : [[change.to === 'suspended' ? 'suspendedAt' : 'deletedAt', change.at]]),
      ];
      batch.call('HSET', keys.bal(address), ...fields.flat());
      index.push('0', address);
      count(`active:${bal.type}`, 1);
      if (change) {
        count(`active:${bal.type}`, -1);
        count(`${change.to}:${bal.type}`, 1);
      }
      // A deleted PER mailbox leaves its owner's set (DELETE_BAL).
      if (bal.type === 'PER' && change?.to !== 'deleted')
        batch.call('SADD', keys.personOwns(bal.owner), address);
      // RECORD_ACTIVITY (rights-scripts.ts); the activity index keeps live mailboxes only.
      if (bal.used) {
        const at = String(bal.used.at);
        batch.call('HSET', keys.activity(address), bal.used.channel, at, 'lastActivityAt', at);
        if (change?.to !== 'deleted') lastActivity.push(at, address);
      }
      if (bal.warnedAt !== undefined) warned.push(address, String(bal.warnedAt));
      if (bal.unpublishedInactive === true) unpublished.push(address);
    }
    batch.callSpread(['ZADD', keys.index], index);
    batch.callSpread(['ZADD', keys.lastActivity, 'GT'], lastActivity);
    batch.callSpread(['HSET', lifecycle.warned], warned);
    batch.callSpread(['SADD', lifecycle.unpublishedInactive], unpublished);
    for (const [field, by] of counts) batch.call('HINCRBY', keys.counts, field, String(by));
    // An array argument: tens of thousands of words are too many to spread into a call.
    await redis.eval(APPLY, 0, batch.args);
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
