import { LuaScript, TRANSITION_FUNCTION } from './lua-script.js';

/**
 * The Lua scripts of rights and activity. Each runs atomically, so a grant and its reverse-index
 * entry (`person-bals:`/`certificate-bals:`) and expiry entry always change together, and a grant
 * can never land on a mailbox that was just deleted. Key names as in registry-keys.ts; the expiry
 * member of a grant is `<address> <subject key>` (addresses hold no space).
 */

/**
 * Stores (or replaces) the grant of one subject on a live mailbox.
 * KEYS: bal hash, rights hash, the subject's reverse-index set, rights-expiry zset.
 * ARGV: address, subject key, grant JSON, expiry in ms ('' when none).
 * Returns {'missing'}, {'deleted'} or {'ok', previous grant JSON or nil}.
 */
export const GRANT_RIGHT = new LuaScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if not status then return {'missing'} end
if status == 'deleted' then return {'deleted'} end
local previous = redis.call('HGET', KEYS[2], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('SADD', KEYS[3], ARGV[1])
local member = ARGV[1] .. ' ' .. ARGV[2]
if ARGV[4] == '' then
  redis.call('ZREM', KEYS[4], member)
else
  redis.call('ZADD', KEYS[4], ARGV[4], member)
end
return {'ok', previous}
`);

/**
 * Removes the grant of one subject. With a time (ms) in ARGV[3], only if the grant expires at or
 * before it (the purge; a grant renewed meanwhile stays).
 * KEYS: rights hash, the subject's reverse-index set, rights-expiry zset.
 * ARGV: address, subject key, expired-by in ms or ''.
 * Returns the removed grant JSON, or nil when there was none to remove.
 */
export const REVOKE_RIGHT = new LuaScript(`
local member = ARGV[1] .. ' ' .. ARGV[2]
local grant = redis.call('HGET', KEYS[1], ARGV[2])
if not grant then
  redis.call('ZREM', KEYS[3], member)
  return false
end
if ARGV[3] ~= '' then
  local expiry = redis.call('ZSCORE', KEYS[3], member)
  if not expiry or tonumber(expiry) > tonumber(ARGV[3]) then return false end
end
redis.call('HDEL', KEYS[1], ARGV[2])
redis.call('SREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], member)
return grant
`);

/**
 * Deletes a BAL (TRANSITION_FUNCTION to 'deleted') and, in the same step, every grant on it with
 * their reverse-index and expiry entries, its owner index entry and its last-activity entry. The
 * activity hash stays, like the BAL's tombstone.
 * KEYS: bal hash, counts hash, rights hash, rights-expiry zset, last-activity zset.
 * ARGV: transition request JSON, key prefix, address.
 * Returns { transition reply, { dropped grant JSON, ... } }.
 */
export const DELETE_BAL = new LuaScript(`${TRANSITION_FUNCTION}
local result = transition(KEYS[1], KEYS[2], cjson.decode(ARGV[1]))
if result[1] ~= 'ok' then return {result, {}} end
local prefix, address = ARGV[2], ARGV[3]
local dropped = {}
local fields = redis.call('HGETALL', KEYS[3])
for i = 1, #fields, 2 do
  local field = fields[i]
  local index
  if string.sub(field, 1, 7) == 'person:' then
    index = prefix .. 'person-bals:' .. string.sub(field, 8)
  else
    index = prefix .. 'certificate-bals:' .. redis.sha1hex(string.sub(field, 13))
  end
  redis.call('SREM', index, address)
  redis.call('ZREM', KEYS[4], address .. ' ' .. field)
  table.insert(dropped, fields[i + 1])
end
redis.call('DEL', KEYS[3])
local owner = redis.call('HMGET', KEYS[1], 'type', 'owner')
if owner[1] == 'PER' then redis.call('SREM', prefix .. 'person-owns:' .. owner[2], address) end
redis.call('ZREM', KEYS[5], address)
return {result, dropped}
`);

/**
 * Records a use of a live mailbox: the channel's timestamp, `lastActivityAt` and the last-activity
 * index each move forward only (a late or replayed record never moves them back).
 * KEYS: bal hash, activity hash, last-activity zset. ARGV: address, channel, time in ms.
 * Returns 1 when recorded, 0 when there is no such live mailbox.
 */
export const RECORD_ACTIVITY = new LuaScript(`
local status = redis.call('HGET', KEYS[1], 'status')
if not status or status == 'deleted' then return 0 end
local at = tonumber(ARGV[3])
for _, field in ipairs({ARGV[2], 'lastActivityAt'}) do
  local current = tonumber(redis.call('HGET', KEYS[2], field))
  if not current or at > current then redis.call('HSET', KEYS[2], field, ARGV[3]) end
end
redis.call('ZADD', KEYS[3], 'GT', at, ARGV[1])
return 1
`);
