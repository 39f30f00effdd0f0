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
 * Bumps the counters of one event.
 * KEYS: day hash, day index set, software hash, CDA hash, flag set (optional: the return claim).
 * ARGV: address, ttl (s), max software values, software field ('' for none), overflow field,
 *       latest-use ms ('' for none), max CDA codes, CDA overflow field, number n of CDA fields,
 *       the n CDA fields, then the fields to increment.
 * Returns 1 when KEYS[5] was given and held the address (now removed), else 0.
 */
const RECORD = new LuaScript(`
local ttl = tonumber(ARGV[2])
local n = tonumber(ARGV[9])
for i = 10 + n, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
if ARGV[6] ~= '' then
  local last = tonumber(redis.call('HGET', KEYS[1], 'lastActivity'))
  if not last or tonumber(ARGV[6]) > last then redis.call('HSET', KEYS[1], 'lastActivity', ARGV[6]) end
end
redis.call('EXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], ttl)
if ARGV[4] ~= '' then
  local field = ARGV[4]
  if redis.call('HEXISTS', KEYS[3], field) == 0 and redis.call('HLEN', KEYS[3]) >= tonumber(ARGV[3]) then
    field = ARGV[5]
  end
  redis.call('HINCRBY', KEYS[3], field, 1)
  redis.call('EXPIRE', KEYS[3], ttl)
end
if n > 0 then
  for i = 10, 9 + n do
    local field = ARGV[i]
    if redis.call('HEXISTS', KEYS[4], field) == 0 and redis.call('HLEN', KEYS[4]) >= tonumber(ARGV[7]) then
      field = ARGV[8]
    end
    redis.call('HINCRBY', KEYS[4], field, 1)
  end
  redis.call('EXPIRE', KEYS[4], ttl)
end
if KEYS[5] then return redis.call('SREM', KEYS[5], ARGV[1]) end
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
    const fields = messageFields(event);
    const software = event.kind === 'message' ? softwareLabel(event.nil) : undefined;
    const codes = event.kind === 'message' ? cdaCodes(event.cda) : [];
    await this.#run(event.bal, at, {
      fields,
      software: software === undefined ? '' : `${event.direction}:${software}`,
      overflow: `${event.direction}:${OTHER_SOFTWARE}`,
      lastActivity: '',
      cda: codes.map((c) => `${event.direction}:${c}`),
      cdaOverflow: `${event.direction}:${OTHER_CDA}`,
    });
  }

  /** Counts a committed creation, suspension or deletion of the mailbox (the registry's observer). */
  async recordBalChange(bal: string, change: CountedBalChange, at: Date): Promise<void> {
    if (!COUNTED_BAL_CHANGES.includes(change)) {
      throw new GatewayError('INTERNAL', `indicator for unknown mailbox change ${String(change)}`, { bal });
    }
    await this.#run(bal, at, { fields: [`bal.${change}`], software: '', overflow: '', lastActivity: '' });
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
    const claimed = await this.#run(
      bal,
      at,
      {
        fields: [`login.${channel}`],
        software: '',
        overflow: '',
        lastActivity: String(at.getTime()),
      },
      flagSet,
    );
    return claimed === 1;
  }

  async #run(
    bal: string,
    at: Date,
    args: {
      fields: readonly string[];
      software: string;
      overflow: string;
      lastActivity: string;
      cda?: readonly string[];
      cdaOverflow?: string;
    },
    flagSet?: string,
  ): Promise<unknown> {
    const ms = at.getTime();
    if (Number.isNaN(ms)) throw new GatewayError('INTERNAL', 'indicator at an invalid date', { bal });
    const address = addressKey(bal);
    const day = dayInZone(ms, this.#timeZone);
    const keys = [
      this.#keys.indicators(day, address),
      this.#keys.indicatorDay(day),
      this.#keys.software(day, address),
      this.#keys.cda(day, address),
      ...(flagSet === undefined ? [] : [flagSet]),
    ];
    try {
      return await RECORD.run(this.#redis, keys, [
        address,
        this.#ttlSeconds,
        this.#maxSoftware,
        args.software,
        args.overflow,
        args.lastActivity,
        String(MAX_CDA_CODES_PER_DAY),
        args.cdaOverflow ?? '',
        String(args.cda?.length ?? 0),
        ...(args.cda ?? []),
        ...args.fields,
      ]);
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
