import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { ACTIVITY_CHANNELS, LuaScript, type ActivityChannel } from '../registry/index.js';
import { DAY_MS, dayInZone } from './lifecycle-time.js';
import { LifecycleKeys } from './lifecycle-keys.js';
import { addressKey } from '../shared/index.js';

/**
 * Daily per-mailbox usage aggregates (MSSANTE.md "Lifecycle and indicators": operators report monthly
 * usage figures to the agency). One hash per mailbox and day, counters bumped with HINCRBY in one
 * atomic script per event (one round trip), kept `lifecycle.indicatorsRetentionDays` (at least 13
 * months). Fields of `indicators:<day>:<address>`:
 *
 * | field                | counts                                                                |
 * |----------------------|-----------------------------------------------------------------------|
 * | `login.<channel>`    | uses of the mailbox: `imap`, `submission`, `application`               |
 * | `lastActivity`       | latest use that day (ms)                                               |
 * | `sent`               | messages submitted from the mailbox (DSN and MDN counted apart)        |
 * | `sent.inter`         | … with at least one recipient at another operator                      |
 * | `sent.patient`       | … with at least one patient recipient (`@patient.mssante.fr`)         |
 * | `sent.cda`           | … carrying `X-MSS-CODECDA` (attached CDA documents)                    |
 * | `received`           | messages delivered into the mailbox (DSN and MDN counted apart)        |
 * | `received.inter`     | … from another operator                                                |
 * | `received.cda`       | … carrying `X-MSS-CODECDA`                                             |
 * | `<direction>.ins`    | … carrying `X-MSS-INS: O` (a qualified patient identity, INS)          |
 * | `<direction>.mes`    | … carrying `X-MSS-MES: FIN` (a conversation with a patient closed)     |
 * | `dsn.<direction>`    | delivery status notifications sent from / received into the mailbox   |
 * | `mdn.<direction>`    | read receipts (RFC 8098) sent from / received into the mailbox          |
 * | `bal.<change>`       | the mailbox was `created`, `suspended` or `deleted` that day (registry) |
 *
 * Intra-operator figures are the totals minus the inter-operator ones. The sending software
 * (`X-MSS-NIL`) is counted in `indicators:<day>:<address>:software` as `<direction>:<value>`, at most
 * `lifecycle.maxSoftwarePerDay` distinct values per mailbox and day, further ones as `(other)`.
 * The CDA document type codes (`X-MSS-CODECDA`, comma separated) are counted one by one in
 * `indicators:<day>:<address>:cda` as `<direction>:<code>`: a code is a LOINC-like token (cdaCodes),
 * anything else counts as `(other)`, and at most MAX_CDA_CODES_PER_DAY distinct codes are kept per
 * mailbox and day, further ones as `(other)` too — a sender cannot grow the keys or the CSV.
 */

export const MESSAGE_DIRECTIONS = ['sent', 'received'] as const;
export type MessageDirection = (typeof MESSAGE_DIRECTIONS)[number];
export type MessageKind = 'message' | 'dsn' | 'mdn';

/** One message seen from one of our mailboxes. */
export interface MessageIndicator {
  /** Our mailbox: the sender (`sent`), or one recipient mailbox (`received`, once per mailbox). */
  readonly bal: string;
  readonly direction: MessageDirection;
  /** Sent: some recipient is at another operator; received: it came from another operator. */
  readonly interOperator: boolean;
  /** Sent: some recipient is a patient mailbox of Mon espace santé (ignored when received). */
  readonly toPatient: boolean;
  /** The message carries `X-MSS-CODECDA`. */
  readonly hasCda: boolean;
  /** Value of `X-MSS-CODECDA` (the codes, comma separated), when present. */
  readonly cda?: string;
  /** Value of `X-MSS-INS`, when present (`O`: a qualified identity is present). */
  readonly ins?: string;
  /** Value of `X-MSS-MES`, when present (`FIN`: the conversation is closed). */
  readonly mes?: string;
  /** Value of `X-MSS-NIL` (the sending software), when present. */
  readonly nil?: string;
  readonly kind: MessageKind;
}

export interface IndicatorRecorderOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  /** Configuration `lifecycle.timeZone`: days are calendar days there. */
  readonly timeZone: string;
  /** Configuration `lifecycle.indicatorsRetentionDays`. */
  readonly retentionDays: number;
  /** Configuration `lifecycle.maxSoftwarePerDay`. */
  readonly maxSoftwarePerDay: number;
}

/**
 * Bumps the counters of one use or mailbox change.
 * KEYS: day hash, day index set, flag set (optional: the return claim).
 * ARGV: address, ttl (s), latest-use ms ('' for none), then the fields to increment.
 * Returns 1 when KEYS[3] was given and held the address (now removed), else 0.
 */
const RECORD = new LuaScript(`
local ttl = tonumber(ARGV[2])
for i = 4, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
if ARGV[3] ~= '' then
  local last = tonumber(redis.call('HGET', KEYS[1], 'lastActivity'))
  if not last or tonumber(ARGV[3]) > last then redis.call('HSET', KEYS[1], 'lastActivity', ARGV[3]) end
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ttl)
if KEYS[3] then return redis.call('SREM', KEYS[3], ARGV[1]) end
return 0
`);

/**
 * Adds the message counts of many mailboxes and days at once (one round trip however many).
 * KEYS: per mailbox and day, its day hash, day index set, software hash and CDA hash.
 * ARGV: ttl (s), max software values, max CDA codes, then per mailbox and day: address, number m
 *       of counts, and m times kind (`c` counter, `s` software, `d` CDA code), field, increment,
 *       overflow field (software and CDA: used when the hash holds its maximum of other fields).
 */
const RECORD_COUNTS = new LuaScript(`
local ttl = tonumber(ARGV[1])
local caps = { s = tonumber(ARGV[2]), d = tonumber(ARGV[3]) }
local slot = { c = 1, s = 3, d = 4 }
local a = 4
for k = 0, #KEYS - 4, 4 do
  local address = ARGV[a]
  local m = tonumber(ARGV[a + 1])
  a = a + 2
  local touched = {}
  for _ = 1, m do
    local kind, field, n = ARGV[a], ARGV[a + 1], tonumber(ARGV[a + 2])
    local key = KEYS[k + slot[kind]]
    if kind ~= 'c' and redis.call('HEXISTS', key, field) == 0 and redis.call('HLEN', key) >= caps[kind] then
      field = ARGV[a + 3]
    end
    redis.call('HINCRBY', key, field, n)
    touched[key] = true
    a = a + 4
  end
  for key in pairs(touched) do redis.call('EXPIRE', key, ttl) end
  redis.call('SADD', KEYS[k + 2], address)
  redis.call('EXPIRE', KEYS[k + 2], ttl)
end
return 0
`);

/** X-MSS-NIL as stored: printable ASCII, bounded, so that a sender cannot blow up keys or the CSV. */
export function softwareLabel(nil: string | undefined): string | undefined {
  if (nil === undefined) return undefined;
  const clean = nil
    .replace(/[\p{Cc}]+/gu, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .replace(/\s+/g, ' ')
    .trim()
    .slice(0, 64);
  return clean === '' ? undefined : clean;
}

export const OTHER_SOFTWARE = '(other)';
export const OTHER_CDA = '(other)';
/** Distinct CDA codes kept per mailbox, day and direction hash (the rest count as `(other)`). */
export const MAX_CDA_CODES_PER_DAY = 200;
/** Codes counted of one message: a longer list is cut (the header is bounded to 256 characters). */
const MAX_CDA_CODES_PER_MESSAGE = 32;
// LOINC codes are `<digits>-<check digit>`; other terminologies use similar short tokens.
const CDA_CODE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$/;

/**
 * The codes of an `X-MSS-CODECDA` value as counted: split on commas, trimmed, each one counted once
 * per message; a token that is not LOINC-like (spaces, control or non-ASCII characters, too long)
 * is counted as `(other)`, never stored as sent.
 */
export function cdaCodes(value: string | undefined): string[] {
  if (value === undefined) return [];
  const codes = new Set<string>();
  for (const raw of value.split(',')) {
    const token = raw.trim();
    if (token === '') continue;
    codes.add(CDA_CODE.test(token) ? token : OTHER_CDA);
    if (codes.size >= MAX_CDA_CODES_PER_MESSAGE) break;
  }
  return [...codes];
}

/** A change of a mailbox counted in the indicators (the registry's BalObserver kinds). */
export const COUNTED_BAL_CHANGES = ['created', 'suspended', 'deleted'] as const;
export type CountedBalChange = (typeof COUNTED_BAL_CHANGES)[number];

export class IndicatorRecorder {
  readonly #redis: Redis;
  readonly #keys: LifecycleKeys;
  readonly #timeZone: string;
  readonly #ttlSeconds: string;
  readonly #maxSoftware: string;

  constructor(options: IndicatorRecorderOptions) {
    this.#redis = options.redis;
    this.#keys = new LifecycleKeys(options.prefix);
    this.#timeZone = options.timeZone;
    this.#ttlSeconds = String(Math.ceil((options.retentionDays * DAY_MS) / 1000));
    this.#maxSoftware = String(options.maxSoftwarePerDay);
  }

  /** Counts one message for one mailbox (submission accepted, or delivered into the mailbox). */
  async recordMessage(event: MessageIndicator, at: Date): Promise<void> {
    await this.recordMessages([{ event, at }]);
  }

  /**
   * Counts many messages in one round trip: summed per mailbox and day first, so a mailbox that
   * received a hundred messages costs one HINCRBY by 100 (IndicatorBuffer sends a second's worth).
   */
  async recordMessages(
    batch: ReadonlyArray<{ readonly event: MessageIndicator; readonly at: Date }>,
  ): Promise<void> {
    const groups = new Map<string, { address: string; day: string; counts: Map<string, number> }>();
    for (const { event, at } of batch) {
      const ms = at.getTime();
      if (Number.isNaN(ms))
        throw new GatewayError('INTERNAL', 'indicator at an invalid date', { bal: event.bal });
      const address = addressKey(event.bal);
      const day = dayInZone(ms, this.#timeZone);
      const id = `${day} ${address}`;
      let group = groups.get(id);
      if (!group) groups.set(id, (group = { address, day, counts: new Map() }));
      for (const count of messageCounts(event)) group.counts.set(count, (group.counts.get(count) ?? 0) + 1);
    }
    if (groups.size === 0) return;
    const keys: string[] = [];
    const args = [this.#ttlSeconds, this.#maxSoftware, String(MAX_CDA_CODES_PER_DAY)];
    for (const { address, day, counts } of groups.values()) {
      keys.push(
        this.#keys.indicators(day, address),
        this.#keys.indicatorDay(day),
        this.#keys.software(day, address),
        this.#keys.cda(day, address),
      );
      args.push(address, String(counts.size));
      // A count is `kind field overflow` joined by NUL (never in a field: they are bounded ASCII).
      for (const [count, n] of counts) {
        const [kind, field, overflow] = count.split('\0') as [string, string, string];
        args.push(kind, field, String(n), overflow);
      }
    }
    await this.#call(batch[0]!.event.bal, () => RECORD_COUNTS.run(this.#redis, keys, args));
  }

  /** Counts a committed creation, suspension or deletion of the mailbox (the registry's observer). */
  async recordBalChange(bal: string, change: CountedBalChange, at: Date): Promise<void> {
    if (!COUNTED_BAL_CHANGES.includes(change)) {
      throw new GatewayError('INTERNAL', `indicator for unknown mailbox change ${String(change)}`, { bal });
    }
    await this.#run(bal, at, [`bal.${change}`], '');
  }

  /** Counts one use of the mailbox (successful login or submission) on its channel. */
  async recordActivity(bal: string, channel: ActivityChannel, at: Date): Promise<void> {
    await this.recordActivityClaiming(bal, channel, at, undefined);
  }

  /**
   * Counts a use and, in the same atomic step, removes the mailbox from `flagSet` (the set of BALs
   * unpublished for inactivity): true when it was there, so exactly one caller handles the return.
   */
  async recordActivityClaiming(
    bal: string,
    channel: ActivityChannel,
    at: Date,
    flagSet: string | undefined,
  ): Promise<boolean> {
    if (!ACTIVITY_CHANNELS.includes(channel)) {
      throw new GatewayError('INTERNAL', `indicator for unknown channel ${String(channel)}`, { bal });
    }
    const claimed = await this.#run(bal, at, [`login.${channel}`], String(at.getTime()), flagSet);
    return claimed === 1;
  }

  async #run(
    bal: string,
    at: Date,
    fields: readonly string[],
    lastActivity: string,
    flagSet?: string,
  ): Promise<unknown> {
    const ms = at.getTime();
    if (Number.isNaN(ms)) throw new GatewayError('INTERNAL', 'indicator at an invalid date', { bal });
    const address = addressKey(bal);
    const day = dayInZone(ms, this.#timeZone);
    const keys = [
      this.#keys.indicators(day, address),
      this.#keys.indicatorDay(day),
      ...(flagSet === undefined ? [] : [flagSet]),
    ];
    return this.#call(bal, () =>
      RECORD.run(this.#redis, keys, [address, this.#ttlSeconds, lastActivity, ...fields]),
    );
  }

  async #call(bal: string, script: () => Promise<unknown>): Promise<unknown> {
    try {
      return await script();
    } catch (err) {
      throw new GatewayError(
        'REGISTRY_UNAVAILABLE',
        `indicators not recorded: ${(err as Error).message}`,
        { bal },
        { cause: err },
      );
    }
  }
}

/**
 * What one message adds, as `kind NUL field NUL overflow`: counters (`c`), its software (`s`) and
 * each of its CDA codes (`d`), the last two with the field they count as once their hash is full.
 */
function messageCounts(event: MessageIndicator): string[] {
  const d = event.direction;
  const counts = messageFields(event).map((f) => `c\0${f}\0`);
  if (event.kind !== 'message') return counts;
  const software = softwareLabel(event.nil);
  if (software !== undefined) counts.push(`s\0${d}:${software}\0${d}:${OTHER_SOFTWARE}`);
  for (const code of cdaCodes(event.cda)) counts.push(`d\0${d}:${code}\0${d}:${OTHER_CDA}`);
  return counts;
}

function messageFields(event: MessageIndicator): string[] {
  if (event.kind !== 'message') return [`${event.kind}.${event.direction}`];
  const d = event.direction;
  const fields: string[] = [d];
  if (event.interOperator) fields.push(`${d}.inter`);
  if (event.toPatient && d === 'sent') fields.push('sent.patient');
  if (event.hasCda) fields.push(`${d}.cda`);
  if (event.ins?.trim().toUpperCase() === 'O') fields.push(`${d}.ins`);
  if (event.mes?.trim().toUpperCase() === 'FIN') fields.push(`${d}.mes`);
  return fields;
}
