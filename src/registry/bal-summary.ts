import { GatewayError } from '../errors/index.js';
import { isBalStatus, isBalType, type Bal } from './bal.js';
import { LuaScript } from './lua-script.js';

/**
 * What the daily lifecycle run reads of each mailbox (issue #16: a million mailboxes planned in 30 s):
 * the fields the inactivity policy, the retention of deleted mail and the publication readers use,
 * and nothing of the free-text metadata. Owner and the rest are read again, in full, for the few
 * mailboxes a step is carried out on. `listeRouge` is always present, as in the registry's records.
 */
export type BalSummary = Pick<Bal, 'address' | 'type' | 'status' | 'createdAt' | 'deletedAt' | 'listeRouge'>;

export interface BalSummaryPage {
  /** In address order. */
  readonly items: BalSummary[];
  /** Present when there may be more: pass it as `cursor` for the next page. */
  readonly nextCursor?: string;
}

/**
 * Largest page: a page is one script, which blocks the server while it runs (about a microsecond or
 * two per mailbox), so a page stays within a few milliseconds.
 */
export const MAX_SUMMARY_LIMIT = 5000;

/** The hash fields read per mailbox, in the order of the script's reply (after the address). */
const SUMMARY_FIELDS = ['type', 'status', 'createdAt', 'deletedAt', 'listeRouge'] as const;
/** Reply entries per mailbox: the address, then SUMMARY_FIELDS. */
const STRIDE = 1 + SUMMARY_FIELDS.length;

/**
 * A page of summaries in one round trip: the addresses after a cursor in the index, each with its
 * record's few fields, read inside the server by one SORT over the index with a GET per field (BY
 * nosort: a sorted set's own order, and LIMIT takes its range by rank directly). That reads the
 * hashes in C: a Lua HMGET per mailbox cost the server several times more, in the script's calls
 * rather than in the reads. The cursor's rank comes from ZLEXCOUNT, in the same script, so a page
 * starts right after the last address of the previous one even if mailboxes were added meanwhile.
 * The reply is a single string (the fields joined by newlines, which neither addresses nor these
 * fields contain; an absent field is empty): the client makes no buffer nor string per field. The
 * script runs atomically, so a page also blocks other clients for its duration: pages are bounded
 * (MAX_SUMMARY_LIMIT). KEYS[1]: the index. ARGV: the key of a BAL without its address
 * (RegistryKeys.bal(''), so the layout stays in registry-keys.ts; the configuration's prefix holds
 * no `*`, which SORT would take for the address's place), the ZRANGEBYLEX minimum, the page size,
 * then SUMMARY_FIELDS.
 */
export const READ_BAL_SUMMARIES = new LuaScript(`
local start = 0
if ARGV[2] ~= '-' then
  start = redis.call('ZLEXCOUNT', KEYS[1], '-', '[' .. string.sub(ARGV[2], 2))
end
local sort = {KEYS[1], 'BY', 'nosort', 'LIMIT', start, tonumber(ARGV[3]), 'GET', '#'}
for i = 4, #ARGV do
  sort[#sort + 1] = 'GET'
  sort[#sort + 1] = ARGV[1] .. '*->' .. ARGV[i]
end
local out = redis.call('SORT', unpack(sort))
for i = 1, #out do
  if not out[i] then out[i] = '' end
end
return table.concat(out, '\\n')
`);

export function summaryScriptArgs(balKeyPrefix: string, after: string | undefined, limit: number): string[] {
  return [balKeyPrefix, after === undefined ? '-' : `(${after}`, String(limit), ...SUMMARY_FIELDS];
}

/**
 * The summaries of a script reply, and the last address scanned (the next page's cursor). An index
 * entry without a record (none is left by our scripts) is skipped, as `BalRegistry.list` does.
 */
export function decodeSummaries(reply: string): {
  items: BalSummary[];
  scanned: number;
  last: string | undefined;
} {
  const items: BalSummary[] = [];
  if (reply === '') return { items, scanned: 0, last: undefined };
  const parts = reply.split('\n');
  let last: string | undefined;
  for (let i = 0; i + STRIDE <= parts.length; i += STRIDE) {
    const address = parts[i] as string;
    last = address;
    const type = parts[i + 1] ?? '';
    const status = parts[i + 2] ?? '';
    const createdAt = parts[i + 3] ?? '';
    const deletedAt = parts[i + 4] ?? '';
    if (type === '' && status === '' && createdAt === '') continue;
    if (!isBalType(type) || !isBalStatus(status) || createdAt === '') {
      // Only our scripts write these hashes; a broken one is a bug or a manual edit, not bad input.
      throw new GatewayError('INTERNAL', `registry record of ${address} is corrupt`, { address });
    }
    const summary: { -readonly [K in keyof BalSummary]: BalSummary[K] } = {
      address,
      type,
      status,
      createdAt,
      listeRouge: parts[i + 5] === '1',
    };
    if (deletedAt !== '') summary.deletedAt = deletedAt;
    items.push(summary);
  }
  return { items, scanned: parts.length / STRIDE, last };
}
