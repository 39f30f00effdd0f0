import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { redisErrorKind } from '../errors/index.js';

/**
 * A server-side Lua script run with EVALSHA, falling back to EVAL when the server does not know it yet
 * (after a restart or a SCRIPT FLUSH). A script runs atomically: no other command interleaves, which is
 * what makes the registry's check-then-write steps race-free.
 *
 * We do not use ioredis `defineCommand`: it adds methods to the shared client, a global side effect.
 */
export class LuaScript {
  readonly #source: string;
  readonly #sha: string;

  constructor(source: string) {
    this.#source = source;
    this.#sha = createHash('sha1').update(source).digest('hex');
  }

  async run(redis: Redis, keys: readonly string[], args: readonly string[]): Promise<unknown> {
    try {
      return await redis.evalsha(this.#sha, keys.length, ...keys, ...args);
    } catch (err) {
      // The NOSCRIPT prefix is how the Redis protocol reports an unknown script (not free text).
      if (redisErrorKind(err) === 'NOSCRIPT') {
        return redis.eval(this.#source, keys.length, ...keys, ...args);
      }
      throw err;
    }
  }
}

/**
 * Creates a BAL unless its key exists, in any status: a deleted BAL stays as a tombstone so its address
 * is never reused. A PER mailbox is also indexed under its owner (rights: "which BALs may this person
 * open"). Returns nil when created, else the existing status.
 * KEYS: bal hash, index sorted set, counts hash, owner's `person-owns` set.
 * ARGV: address, type, owner, now (ISO), then metadata field/value pairs (bal-metadata.ts).
 */
export const CREATE_BAL = new LuaScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if status then return status end
redis.call('HSET', KEYS[1], 'address', ARGV[1], 'type', ARGV[2], 'owner', ARGV[3],
  'status', 'active', 'createdAt', ARGV[4], 'updatedAt', ARGV[4])
for i = 5, #ARGV - 1, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1]) end
redis.call('ZADD', KEYS[2], 0, ARGV[1])
redis.call('HINCRBY', KEYS[3], 'active:' .. ARGV[2], 1)
if ARGV[2] == 'PER' then redis.call('SADD', KEYS[4], ARGV[1]) end
return false
`);

/**
 * Lua function `transition(balKey, countsKey, req)`: moves a BAL to another status if its current
 * status is one of `allowedFrom`, setting and deleting the given fields and keeping the per
 * status/type counts in step. `req` is { to, allowedFrom: [], set: {field: value}, del: [] }.
 * Returns {'missing'}, {'refused', currentStatus} or {'ok', field, value, ...} (the new hash).
 * Shared by TRANSITION_BAL and the deletion script of rights-scripts.ts.
 */
export const TRANSITION_FUNCTION = `
local function transition(balKey, countsKey, req)
  local cur = redis.call('HMGET', balKey, 'status', 'type')
  local status, btype = cur[1], cur[2]
  if not status then return {'missing'} end
  local allowed = false
  for _, s in ipairs(req.allowedFrom) do
    if s == status then allowed = true end
  end
  if not allowed then return {'refused', status} end
  redis.call('HSET', balKey, 'status', req.to)
  for field, value in pairs(req.set) do redis.call('HSET', balKey, field, value) end
  for _, field in ipairs(req.del) do redis.call('HDEL', balKey, field) end
  redis.call('HINCRBY', countsKey, status .. ':' .. btype, -1)
  redis.call('HINCRBY', countsKey, req.to .. ':' .. btype, 1)
  local all = redis.call('HGETALL', balKey)
  table.insert(all, 1, 'ok')
  return all
end
`;

/** KEYS: bal hash, counts hash. ARGV[1]: the JSON request of TRANSITION_FUNCTION. */
export const TRANSITION_BAL = new LuaScript(`${TRANSITION_FUNCTION}
return transition(KEYS[1], KEYS[2], cjson.decode(ARGV[1]))
`);

/**
 * Changes the published metadata of a BAL that is not deleted (address, type and owner never change).
 * KEYS: bal hash. ARGV[1]: JSON { set: {field: value}, del: [field] } (updatedAt included in set).
 * Returns {'missing'}, {'deleted'} or {'ok', field, value, ...} (the new hash).
 */
export const UPDATE_BAL_METADATA = new LuaScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status == 'deleted' then return {'deleted'} end
local req = cjson.decode(ARGV[1])
for field, value in pairs(req.set) do redis.call('HSET', KEYS[1], field, value) end
for _, field in ipairs(req.del) do redis.call('HDEL', KEYS[1], field) end
local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, 'ok')
return all
`);
