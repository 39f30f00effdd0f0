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
 * | `dsn.<direction>`    | delivery status notifications sent from / received into the mailbox   |
 * | `mdn.<direction>`    | read receipts (RFC 8098) sent from / received into the mailbox          |
 *
 * Intra-operator figures are the totals minus the inter-operator ones. The sending software
 * (`X-MSS-NIL`) is counted in `indicators:<day>:<address>:software` as `<direction>:<value>`, at most
 * `lifecycle.maxSoftwarePerDay` distinct values per mailbox and day, further ones as `(other)`.
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
 * KEYS: day hash, day index set, software hash, flag set (optional: the return claim).
 * ARGV: address, ttl (s), max software values, software field ('' for none), overflow field,
 *       latest-use ms ('' for none), then the fields to increment.
 * Returns 1 when KEYS[4] was given and held the address (now removed), else 0.
 */
const RECORD = new LuaScript(`
local ttl = tonumber(ARGV[2])
for i = 7, #ARGV do redis.call('HINCRBY', KEYS[1], ARGV[i], 1) end
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
if KEYS[4] then return redis.call('SREM', KEYS[4], ARGV[1]) end
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
    await this.#run(event.bal, at, {
      fields,
      software: software === undefined ? '' : `${event.direction}:${software}`,
      overflow: `${event.direction}:${OTHER_SOFTWARE}`,
      lastActivity: '',
    });
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
      { fields: [`login.${channel}`], software: '', overflow: '', lastActivity: String(at.getTime()) },
      flagSet,
    );
    return claimed === 1;
  }

  async #run(
    bal: string,
    at: Date,
    args: { fields: readonly string[]; software: string; overflow: string; lastActivity: string },
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
  return fields;
}
