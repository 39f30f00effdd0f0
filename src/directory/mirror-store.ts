import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError, isGatewayError, redisErrorKind } from '../errors/index.js';

/**
 * The mirrors' state in Redis, shared by every gateway process. Every key of a mirror carries the
 * hash tag `{dir:<mirror>}` so that they live in one cluster slot (the scripts below read a data
 * key named by the state).
 *
 * | key                              | type          | content                                         |
 * |----------------------------------|---------------|-------------------------------------------------|
 * | `dir:{dir:<mirror>}:state`       | hash          | `version` in service and its facts, last attempt |
 * | `dir:{dir:<mirror>}:v:<version>` | string / hash | one accepted copy (XML, CRL DER, address → entry) |
 * | `dir:{dir:extraction}:v:<v>:pp`  | hash          | national person id → its addresses (space-separated) |
 * | `dir:{dir:extraction}:v:<v>:d`   | string        | digests of the copy's addresses (8 bytes each)    |
 * | `dir:{dir:<mirror>}:lock`        | string        | token of the process refreshing this mirror      |
 * | channel `dir:changed`            | pub/sub       | `<mirror>` when its version in service changed   |
 *
 * A new copy is written under a new version, then the state's `version` is switched by one script
 * (compare-and-set on the version it replaces), then the old version is deleted. Readers of the
 * extraction resolve the version and read the entry in one script, so no reader sees a gap.
 */
/** Suffix of the extraction's per-person index beside a version's data key. */
export const PERSON_INDEX_SUFFIX = ':pp';
/**
 * Suffix of the extraction's address digests beside a version's data key: 8 bytes an address, read in
 * one GET by the next load to count what it adds and removes (extraction-digests.ts).
 */
export const DIGESTS_SUFFIX = ':d';

export class MirrorKeys {
  constructor(readonly prefix: string) {}
  #base(mirror: string): string {
    return `${this.prefix}dir:{dir:${mirror}}`;
  }
  state(mirror: string): string {
    return `${this.#base(mirror)}:state`;
  }
  /** Prefix of the versioned data keys (the scripts append the version). */
  dataPrefix(mirror: string): string {
    return `${this.#base(mirror)}:v:`;
  }
  data(mirror: string, version: number | string): string {
    return `${this.dataPrefix(mirror)}${version}`;
  }
  /** The extraction's index of a data key: national person id → its addresses (space-separated). */
  personIndex(dataKey: string): string {
    return `${dataKey}${PERSON_INDEX_SUFFIX}`;
  }
  /** A version's data key and the keys beside it (the extraction's person index and digests). */
  versionKeys(dataKey: string): string[] {
    return [dataKey, this.personIndex(dataKey), `${dataKey}${DIGESTS_SUFFIX}`];
  }
  lock(mirror: string): string {
    return `${this.#base(mirror)}:lock`;
  }
  get channel(): string {
    return `${this.prefix}dir:changed`;
  }
}

/** The facts of a mirror as its state hash keeps them (all optional: a mirror may never have run). */
export interface MirrorState {
  /** Version in service. */
  readonly version?: number;
  readonly source?: string;
  readonly sha256?: string;
  readonly sizeBytes?: number;
  readonly entries?: number;
  readonly added?: number;
  readonly removed?: number;
  /** When the copy in service was accepted. */
  readonly acceptedAt?: string;
  /** When the source last gave this copy (accepted or unchanged): what the age is measured from. */
  readonly confirmedAt?: string;
  /** Whitelist DateDeGeneration, CRL thisUpdate. */
  readonly generatedAt?: string;
  /** CRL nextUpdate. */
  readonly nextUpdate?: string;
  /** CRL mirrors: the canonical DN of the authority the copies must come from (pinned at the first). */
  readonly issuer?: string;
  /** Whitelist: malformed entries left out of the copy in service, and what is wrong with each (one a line). */
  readonly rejected?: number;
  readonly rejectedEntries?: string;
  readonly lastAttemptAt?: string;
  readonly lastOutcome?: string;
  readonly lastReason?: string;
  readonly lastError?: string;
}

const NUMBER_FIELDS = new Set(['version', 'sizeBytes', 'entries', 'added', 'removed', 'rejected']);

export function stateFromHash(hash: Record<string, string>): MirrorState {
  const out: Record<string, string | number> = {};
  for (const [k, v] of Object.entries(hash)) {
    if (k === 'seq') continue;
    out[k] = NUMBER_FIELDS.has(k) ? Number(v) : v;
  }
  return out;
}

function flatten(fields: Record<string, string | number | undefined>): string[] {
  return Object.entries(fields).flatMap(([k, v]) => (v === undefined ? [] : [k, String(v)]));
}

/** Minimal EVALSHA-with-fallback runner (scripts are atomic: nothing interleaves). */
class Script {
  readonly #sha: string;
  constructor(readonly source: string) {
    this.#sha = createHash('sha1').update(source).digest('hex');
  }
  async run(redis: Redis, keys: readonly string[], args: readonly (string | number)[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (err) {
      // NOSCRIPT is how the protocol reports an unknown script (after a restart or SCRIPT FLUSH).
      if (redisErrorKind(err) === 'NOSCRIPT') return redis.eval(this.source, keys.length, ...keys, ...args);
      throw err;
    }
  }
}

/**
 * KEYS[1] state. ARGV[1] expected current version ('' for none), ARGV[2] new version, ARGV[3]
 * channel, ARGV[4] mirror, then field/value pairs. Returns {1} when switched, {0, current} when
 * another process switched first.
 */
const SWITCH = new Script(`
local cur = redis.call('HGET', KEYS[1], 'version') or ''
if cur ~= ARGV[1] then return {0, cur} end
redis.call('HSET', KEYS[1], 'version', ARGV[2])
for i = 5, #ARGV - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
for _, f in ipairs({'added', 'removed', 'nextUpdate', 'generatedAt', 'rejected', 'rejectedEntries'}) do
  local set = false
  for i = 5, #ARGV - 1, 2 do if ARGV[i] == f then set = true end end
  if not set then redis.call('HDEL', KEYS[1], f) end
end
redis.call('PUBLISH', ARGV[3], ARGV[4])
return {1}
`);

/** KEYS[1] lock. ARGV[1] token. Deletes the lock only if we still hold it. */
const UNLOCK = new Script(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`);

/**
 * KEYS[1] state. ARGV[1] data key prefix, ARGV[2..] addresses. Returns {version, values...} read
 * from the version in service in one atomic step, or {} when there is none.
 */
export const LOOKUP = new Script(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return {} end
local values = redis.call('HMGET', ARGV[1] .. v, unpack(ARGV, 2))
table.insert(values, 1, v)
return values
`);

/**
 * KEYS[1] state. ARGV[1] data key prefix, ARGV[2] national person id. The version in service, then
 * each address the extraction lists for that person followed by its encoded entry.
 */
export const LOOKUP_PERSON = new Script(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return {} end
local out = {v}
local list = redis.call('HGET', ARGV[1] .. v .. '${PERSON_INDEX_SUFFIX}', ARGV[2])
if not list then return out end
for a in string.gmatch(list, '%S+') do
  table.insert(out, a)
  table.insert(out, redis.call('HGET', ARGV[1] .. v, a) or '')
end
return out
`);

/** KEYS[1] state. ARGV[1] data key prefix. The version and the number of addresses in service. */
export const COUNT = new Script(`
local v = redis.call('HGET', KEYS[1], 'version')
if not v then return {} end
return {v, redis.call('HLEN', ARGV[1] .. v)}
`);

export function directoryUnavailable(err: unknown): GatewayError {
  if (isGatewayError(err)) return err;
  const why = err instanceof Error ? err.message : String(err);
  return new GatewayError(
    'DIRECTORY_UNAVAILABLE',
    `directory mirror (Redis) unavailable: ${why}`,
    {},
    { cause: err },
  );
}

/** Redis operations of the refresh and of every process that follows it. */
export class MirrorStore {
  readonly keys: MirrorKeys;
  constructor(
    readonly redis: Redis,
    prefix: string,
  ) {
    this.keys = new MirrorKeys(prefix);
  }

  async state(mirror: string): Promise<MirrorState> {
    return stateFromHash(await this.redis.hgetall(this.keys.state(mirror)));
  }

  /** Takes the refresh lock of a mirror; the token to release it, or undefined when another holds it. */
  async lock(mirror: string, ttlMs: number): Promise<string | undefined> {
    const token = randomBytes(12).toString('hex');
    const ok = await this.redis.set(this.keys.lock(mirror), token, 'PX', ttlMs, 'NX');
    return ok === 'OK' ? token : undefined;
  }

  async unlock(mirror: string, token: string): Promise<void> {
    await UNLOCK.run(this.redis, [this.keys.lock(mirror)], [token]);
  }

  /** A fresh version number, never reused (kept in the state hash, outside the copy's facts). */
  async nextVersion(mirror: string): Promise<number> {
    return this.redis.hincrby(this.keys.state(mirror), 'seq', 1);
  }

  /** Records the outcome of an attempt, whatever it was. */
  async recordAttempt(
    mirror: string,
    fields: { at: string; outcome: string; reason: string; error?: string; confirmedAt?: string },
  ): Promise<void> {
    const key = this.keys.state(mirror);
    const multi = this.redis.multi();
    multi.hset(
      key,
      ...flatten({
        lastAttemptAt: fields.at,
        lastOutcome: fields.outcome,
        lastReason: fields.reason,
        confirmedAt: fields.confirmedAt,
      }),
    );
    if (fields.error === undefined) multi.hdel(key, 'lastError');
    else multi.hset(key, 'lastError', fields.error.slice(0, 500));
    await multi.exec();
  }

  /**
   * Puts `version` in service if the version in service is still `expected`, announces it, and
   * deletes the replaced copy. False when another process switched first (the new copy is dropped).
   */
  async switchTo(
    mirror: string,
    expected: number | undefined,
    version: number,
    facts: Record<string, string | number | undefined>,
  ): Promise<boolean> {
    const reply = (await SWITCH.run(
      this.redis,
      [this.keys.state(mirror)],
      [
        expected === undefined ? '' : String(expected),
        String(version),
        this.keys.channel,
        mirror,
        ...flatten(facts),
      ],
    )) as [number, string?];
    if (reply[0] !== 1) {
      await this.#unlinkVersion(mirror, version);
      return false;
    }
    if (expected !== undefined) await this.#unlinkVersion(mirror, expected);
    return true;
  }

  /** Deletes data keys of versions not in service (copies of refreshes that died half-way). */
  /** A version's data key and, for the extraction, its per-person index. */
  async #unlinkVersion(mirror: string, version: number | string): Promise<void> {
    await this.redis.unlink(...this.keys.versionKeys(this.keys.data(mirror, version)));
  }

  async dropOrphans(mirror: string, keep: number | undefined): Promise<number> {
    let dropped = 0;
    // SCAN walks the whole keyspace whatever the pattern: 1,000 keys a call, not 100, so that a
    // Redis holding millions of keys (queues, registry) does not add seconds of round trips to
    // every refresh.
    const stream = this.redis.scanStream({ match: `${this.keys.dataPrefix(mirror)}*`, count: 1000 });
    for await (const batch of stream as AsyncIterable<string[]>) {
      const kept = keep === undefined ? [] : this.keys.versionKeys(this.keys.data(mirror, keep));
      const orphans = batch.filter((k) => !kept.includes(k));
      if (orphans.length > 0) dropped += await this.redis.unlink(...orphans);
    }
    return dropped;
  }
}
