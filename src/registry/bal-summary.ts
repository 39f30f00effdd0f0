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
 * A page of summaries in one round trip: the addresses after a cursor in the index (ZRANGEBYLEX),
 * then each record's few fields (HMGET), inside the server. Where a pipeline would cost the client
 * a command object and a reply per mailbox, this is one command and one reply per page, and that
 * reply is a single string (the fields joined by newlines, which neither addresses nor these fields
 * contain; an absent field is empty): the client makes no buffer nor string per field, and most of
 * the garbage a million mailboxes made is gone. The script runs atomically, so a page also blocks
 * other clients for its duration: pages are bounded (MAX_SUMMARY_LIMIT), a few milliseconds each.
 * KEYS[1]: the index. ARGV: the key of a BAL without its address (RegistryKeys.bal(''), so the
 * layout stays in registry-keys.ts), the ZRANGEBYLEX minimum, the page size, then SUMMARY_FIELDS.
 */
export const READ_BAL_SUMMARIES = new LuaScript(`
local addresses = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, tonumber(ARGV[3]))
local fields = {}
for i = 4, #ARGV do fields[#fields + 1] = ARGV[i] end
local out = {}
local n = 0
for _, address in ipairs(addresses) do
  local values = redis.call('HMGET', ARGV[1] .. address, unpack(fields))
  n = n + 1
  out[n] = address
  for j = 1, #fields do
    n = n + 1
    out[n] = values[j] or ''
  end
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
