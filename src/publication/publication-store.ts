import type { Redis } from 'ioredis';
import { GatewayError, isGatewayError, type ErrorCode } from '../errors/index.js';
import { LuaScript, isBalType, type BalType } from '../registry/index.js';
import type { MailboxEntry } from './mailbox-entry.js';
import {
  PUBLICATION_STATES,
  UNPUBLISH_HOLDS,
  UNPUBLISHED_REASONS,
  type DirectoryCallRecord,
  type Listed,
  type PublicationState,
  type PublicationStateName,
  type UnpublishHold,
  type UnpublishedReason,
} from './publication-state.js';

/**
 * Publication state in Redis, one hash per mailbox plus one set per state (counts for the gauge,
 * members for the drift check). `<prefix>` is the configuration's `redis.prefix`; addresses hold no
 * `:`, so they never collide with the fixed names.
 *
 * | key                              | type   | content                                        |
 * |----------------------------------|--------|------------------------------------------------|
 * | `publication:<address>`          | hash   | the record below                               |
 * | `publication:state:<state>`      | set    | addresses in that state                        |
 * | `publication:drift`              | string | the last drift report (JSON)                   |
 *
 * Record fields: address, type, state, since, target (where the latest request heads), reason, errorCode, errorMessage, errorAt,
 * listed (yes/no/unknown), `hold:<hold>` ('1'), attempts, lastCall (JSON), published (JSON),
 * updatedAt, and two counters: `desired` (bumped by every change asked for) and `applied` (the
 * `desired` value the worker last settled). desired > applied means work is owed.
 */
export class PublicationKeys {
  readonly #prefix: string;

  constructor(prefix: string) {
    this.#prefix = prefix;
  }

  record(address: string): string {
    return `${this.#prefix}publication:${address}`;
  }

  get statePrefix(): string {
    return `${this.#prefix}publication:state:`;
  }

  state(state: PublicationStateName): string {
    return `${this.statePrefix}${state}`;
  }

  get drift(): string {
    return `${this.#prefix}publication:drift`;
  }
}

/**
 * The one writer of a record. Atomic, so a change asked for by the admin API and a result written
 * by the worker never undo each other, and the record and the state sets always agree.
 * - `towards` (a new request): the state becomes `pending` unless it already is where the request
 *   heads (a metadata change of a published mailbox stays `published`, its `since` unmoved).
 * - `settles` (the worker): records the version settled; if a newer request heads elsewhere than
 *   the state reached (`reaches`; none for a failure), the state is `pending` (the worker goes on).
 * KEYS: record hash. ARGV: state-set prefix, JSON request:
 *   { address, now, create: bool, set: {}, del: [], bump: bool, state?: name, towards?: target,
 *     settles?: version, reaches?: target, incrAttempts: bool }
 * Returns the record (HGETALL as a flat list), or an empty list when there is none and no create.
 */
const WRITE_RECORD = new LuaScript(`
local key, sets = KEYS[1], ARGV[1]
local req = cjson.decode(ARGV[2])
local old = redis.call('HGET', key, 'state')
if not old then
  if not req.create then return {} end
  redis.call('HSET', key, 'address', req.address, 'state', 'pending', 'since', req.now, 'listed', 'no',
    'desired', 0, 'applied', 0, 'attempts', 0)
  redis.call('SADD', sets .. 'pending', req.address)
  old = 'pending'
end
for field, value in pairs(req.set) do redis.call('HSET', key, field, value) end
for _, field in ipairs(req.del) do redis.call('HDEL', key, field) end
if req.bump then redis.call('HINCRBY', key, 'desired', 1) end
if req.incrAttempts then redis.call('HINCRBY', key, 'attempts', 1) end
local new = req.state
if req.towards then
  local there = (old == 'published' and req.towards == 'published') or
    ((old == 'unpublished' or old == 'unpublished-inactive') and req.towards == 'unpublished')
  if not there then new = 'pending' end
end
if req.settles then
  redis.call('HSET', key, 'applied', req.settles)
  if tonumber(redis.call('HGET', key, 'desired')) ~= req.settles and
    redis.call('HGET', key, 'target') ~= req.reaches then new = 'pending' end
end
if new and new ~= old then
  redis.call('SREM', sets .. old, req.address)
  redis.call('SADD', sets .. new, req.address)
  redis.call('HSET', key, 'state', new, 'since', req.now)
end
redis.call('HSET', key, 'updatedAt', req.now)
return redis.call('HGETALL', key)
`);

/** A record as the worker needs it: the public state plus the version counters. */
export interface PublicationRecord extends PublicationState {
  readonly type?: BalType;
  readonly desired: number;
  readonly applied: number;
}

export interface WriteRequest {
  readonly create?: boolean;
  readonly set?: Readonly<Record<string, string>>;
  readonly del?: readonly string[];
  readonly bump?: boolean;
  readonly state?: PublicationStateName;
  readonly towards?: 'published' | 'unpublished';
  readonly settles?: number;
  readonly reaches?: 'published' | 'unpublished';
  readonly incrAttempts?: boolean;
}

/** The record fields of a call, an error and a published entry (all JSON or plain strings). */
export const FIELD = {
  callRecord: (call: DirectoryCallRecord) => JSON.stringify(call),
  entry: (entry: MailboxEntry) => JSON.stringify(entry),
  hold: (hold: UnpublishHold) => `hold:${hold}`,
} as const;

export const ERROR_FIELDS = ['errorCode', 'errorMessage', 'errorAt'] as const;

export class PublicationStore {
  readonly #redis: Redis;
  readonly keys: PublicationKeys;

  constructor(options: { redis: Redis; prefix: string }) {
    this.#redis = options.redis;
    this.keys = new PublicationKeys(options.prefix);
  }

  /** Applies one write; the record after it, or null when there is none (and `create` was not set). */
  async write(address: string, now: Date, request: WriteRequest): Promise<PublicationRecord | null> {
    const json = JSON.stringify({
      address,
      now: now.toISOString(),
      create: request.create ?? false,
      // cjson turns an empty JSON object into an empty table either way; an empty array must stay one.
      set: request.set ?? {},
      del: request.del ?? [],
      bump: request.bump ?? false,
      incrAttempts: request.incrAttempts ?? false,
      ...(request.state === undefined ? {} : { state: request.state }),
      ...(request.towards === undefined ? {} : { towards: request.towards }),
      ...(request.settles === undefined ? {} : { settles: request.settles }),
      ...(request.reaches === undefined ? {} : { reaches: request.reaches }),
    });
    const reply = await call(() =>
      WRITE_RECORD.run(this.#redis, [this.keys.record(address)], [this.keys.statePrefix, json]),
    );
    return decodeRecord(pairs(reply as unknown[]));
  }

  async read(address: string): Promise<PublicationRecord | null> {
    return decodeRecord(await call(() => this.#redis.hgetall(this.keys.record(address))));
  }

  async readMany(addresses: readonly string[]): Promise<Array<PublicationRecord | null>> {
    if (addresses.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const a of addresses) pipeline.hgetall(this.keys.record(a));
    const replies = (await call(() => pipeline.exec())) ?? [];
    return replies.map(([err, hash]) => {
      if (err) throw unavailable(err);
      return decodeRecord(hash as Record<string, string>);
    });
  }

  /** `desired` and `applied` of each address, in order (null for an address without record). */
  async versions(addresses: readonly string[]): Promise<Array<{ desired: number; applied: number } | null>> {
    if (addresses.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const a of addresses) pipeline.hmget(this.keys.record(a), 'desired', 'applied');
    const replies = (await call(() => pipeline.exec())) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw unavailable(err);
      const [desired, applied] = reply as [string | null, string | null];
      return desired === null ? null : { desired: Number(desired), applied: Number(applied ?? 0) };
    });
  }

  /** Mailboxes per state, every state present. */
  async counts(): Promise<Record<PublicationStateName, number>> {
    const pipeline = this.#redis.pipeline();
    for (const s of PUBLICATION_STATES) pipeline.scard(this.keys.state(s));
    const replies = (await call(() => pipeline.exec())) ?? [];
    const counts = {} as Record<PublicationStateName, number>;
    PUBLICATION_STATES.forEach((s, i) => {
      const [err, n] = replies[i] ?? [null, 0];
      if (err) throw unavailable(err);
      counts[s] = Number(n);
    });
    return counts;
  }

  /** Every address in a state, a batch at a time (SSCAN: a mailbox that moves meanwhile may be missed). */
  async *members(state: PublicationStateName, batch = 500): AsyncGenerator<string[]> {
    let cursor = '0';
    do {
      const [next, found] = await call(() =>
        this.#redis.sscan(this.keys.state(state), cursor, 'COUNT', batch),
      );
      cursor = next;
      if (found.length > 0) yield found;
    } while (cursor !== '0');
  }

  /** `type` and `since` of each address, in order, for the drift check. */
  async typesAndSince(addresses: readonly string[]): Promise<Array<{ type?: string; since?: string }>> {
    if (addresses.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const a of addresses) pipeline.hmget(this.keys.record(a), 'type', 'since');
    const replies = (await call(() => pipeline.exec())) ?? [];
    return replies.map(([err, reply]) => {
      if (err) throw unavailable(err);
      const [type, since] = reply as [string | null, string | null];
      return { ...(type === null ? {} : { type }), ...(since === null ? {} : { since }) };
    });
  }

  async saveDrift(json: string): Promise<void> {
    await call(() => this.#redis.set(this.keys.drift, json));
  }

  async loadDrift(): Promise<string | null> {
    return call(() => this.#redis.get(this.keys.drift));
  }
}

function pairs(flat: readonly unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

function isState(value: string | undefined): value is PublicationStateName {
  return value !== undefined && (PUBLICATION_STATES as readonly string[]).includes(value);
}

function isReason(value: string | undefined): value is UnpublishedReason {
  return value !== undefined && (UNPUBLISHED_REASONS as readonly string[]).includes(value);
}

function isListed(value: string | undefined): value is Listed {
  return value === 'yes' || value === 'no' || value === 'unknown';
}

/** Turns a record hash into a record; null for none. Only WRITE_RECORD writes these hashes. */
export function decodeRecord(hash: Record<string, string>): PublicationRecord | null {
  const { address, state, since, listed, updatedAt } = hash;
  if (address === undefined) return null;
  if (!isState(state) || since === undefined || !isListed(listed)) {
    throw new GatewayError('INTERNAL', `publication record of ${address} is corrupt`, { address });
  }
  const target = hash.target === 'published' || hash.target === 'unpublished' ? hash.target : undefined;
  const { errorCode, errorMessage, errorAt } = hash;
  return {
    address,
    state,
    since,
    ...(hash.type !== undefined && isBalType(hash.type) ? { type: hash.type } : {}),
    ...(target === undefined ? {} : { target }),
    ...(isReason(hash.reason) ? { reason: hash.reason } : {}),
    ...(errorCode !== undefined && errorMessage !== undefined && errorAt !== undefined
      ? { error: { code: errorCode as ErrorCode, message: errorMessage, at: errorAt } }
      : {}),
    listed,
    holds: UNPUBLISH_HOLDS.filter((h) => hash[FIELD.hold(h)] === '1'),
    attempts: Number(hash.attempts ?? 0),
    ...(hash.lastCall === undefined ? {} : { lastCall: JSON.parse(hash.lastCall) as DirectoryCallRecord }),
    ...(hash.published === undefined ? {} : { published: JSON.parse(hash.published) as MailboxEntry }),
    changePending: Number(hash.desired ?? 0) > Number(hash.applied ?? 0),
    updatedAt: updatedAt ?? since,
    desired: Number(hash.desired ?? 0),
    applied: Number(hash.applied ?? 0),
  };
}

/** The public view of a record (no version counters). */
export function publicState(record: PublicationRecord): PublicationState {
  const { desired: _desired, applied: _applied, type: _type, ...state } = record;
  return state;
}

async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw isGatewayError(err) ? err : unavailable(err);
  }
}

function unavailable(err: unknown): GatewayError {
  const why = err instanceof Error ? err.message : String(err);
  return new GatewayError(
    'REGISTRY_UNAVAILABLE',
    `publication state (Redis) unavailable: ${why}`,
    {},
    { cause: err },
  );
}
