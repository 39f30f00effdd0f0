import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import type { Bal } from '../registry/index.js';
import { OTHER_CDA } from './indicator-recorder.js';
import { LifecycleKeys } from './lifecycle-keys.js';
import { dayInZone, daysBefore, daysOfMonth } from './lifecycle-time.js';
import type { ActivityReader, LifecycleRegistry } from './lifecycle-ports.js';

/**
 * The monthly usage report for the agency (`mssgw indicators export --month YYYY-MM`): one CSV row
 * per mailbox that existed during the month, from the daily aggregates of indicator-recorder.ts.
 * RFC 4180 CSV, UTF-8, comma separated, CRLF line ends, one header line. Columns:
 *
 * | column                       | meaning                                                                  |
 * |------------------------------|--------------------------------------------------------------------------|
 * | `month`                      | the month reported, `YYYY-MM` (days in `lifecycle.timeZone`)              |
 * | `address`                    | the mailbox (BAL)                                                        |
 * | `type`                       | `PER`, `ORG`, `APP` or `CAB`                                             |
 * | `status`                     | `active`, `suspended` or `deleted`, at the time of the export            |
 * | `created_at`                 | creation of the mailbox (ISO 8601, UTC)                                  |
 * | `imap_logins`                | successful IMAP logins to the mailbox in the month (owner or a right)    |
 * | `submission_logins`          | successful SMTP submission logins                                        |
 * | `application_logins`         | successful logins of an application certificate (APP mailboxes)          |
 * | `active_days`                | days of the month with at least one login                                |
 * | `last_connection_at`         | latest login up to the end of the month (ISO 8601, UTC); empty: none known |
 * | `messages_sent`              | messages submitted from the mailbox (DSN and MDN not included)           |
 * | `messages_sent_intra`        | … all of whose recipients are at this operator                           |
 * | `messages_sent_inter`        | … with at least one recipient at another operator                        |
 * | `messages_sent_to_patients`  | … with at least one patient recipient (`@patient.mssante.fr`)           |
 * | `messages_sent_with_cda`     | … carrying `X-MSS-CODECDA` (CDA documents attached)                       |
 * | `messages_received`          | messages delivered into the mailbox (DSN and MDN not included)           |
 * | `messages_received_intra`    | … from a mailbox of this operator                                        |
 * | `messages_received_inter`    | … from another operator                                                  |
 * | `messages_received_with_cda` | … carrying `X-MSS-CODECDA`                                                |
 * | `messages_sent_with_ins`     | messages sent carrying `X-MSS-INS: O` (qualified patient identity)        |
 * | `messages_received_with_ins` | messages received carrying `X-MSS-INS: O`                                 |
 * | `messages_sent_mes_fin`      | messages sent carrying `X-MSS-MES: FIN` (patient conversation closed)     |
 * | `messages_received_mes_fin`  | messages received carrying `X-MSS-MES: FIN`                               |
 * | `dsn_sent`, `dsn_received`   | delivery status notifications sent from / received into the mailbox     |
 * | `mdn_sent`, `mdn_received`   | read receipts (MDN) sent from / received into the mailbox                 |
 * | `software_sent`              | `X-MSS-NIL` of the messages sent: `value=count` pairs separated by `;`     |
 * | `software_received`          | the same for the messages received                                       |
 * | `cda_codes_sent`             | CDA codes of the messages sent (`X-MSS-CODECDA`, each code once per message): `code=count` pairs separated by `;`, at most MAX_CDA_CODES_PER_MONTH codes, the rest and non-LOINC-like tokens as `(other)` |
 * | `cda_codes_received`         | the same for the messages received                                       |
 * | `bal_created`                | 1 when the mailbox was created during the month (registry event), else 0 |
 * | `bal_suspended`              | times the mailbox was suspended during the month                         |
 * | `bal_deleted`                | 1 when the mailbox was deleted during the month, else 0                  |
 *
 * Rows are in address order; a mailbox is listed when it was created by the end of the month and not
 * deleted before its first day. The month's totals of mailboxes created, suspended and deleted are
 * the sums of the last three columns.
 */

export interface IndicatorRow {
  readonly month: string;
  readonly address: string;
  readonly type: string;
  readonly status: string;
  readonly createdAt: string;
  readonly imapLogins: number;
  readonly submissionLogins: number;
  readonly applicationLogins: number;
  readonly activeDays: number;
  /** ISO, or undefined when no login is known up to the end of the month. */
  readonly lastConnectionAt: string | undefined;
  readonly messagesSent: number;
  readonly messagesSentIntra: number;
  readonly messagesSentInter: number;
  readonly messagesSentToPatients: number;
  readonly messagesSentWithCda: number;
  readonly messagesReceived: number;
  readonly messagesReceivedIntra: number;
  readonly messagesReceivedInter: number;
  readonly messagesReceivedWithCda: number;
  readonly messagesSentWithIns: number;
  readonly messagesReceivedWithIns: number;
  readonly messagesSentMesFin: number;
  readonly messagesReceivedMesFin: number;
  readonly dsnSent: number;
  readonly dsnReceived: number;
  readonly mdnSent: number;
  readonly mdnReceived: number;
  /** X-MSS-NIL value → messages, per direction. */
  readonly softwareSent: Readonly<Record<string, number>>;
  readonly softwareReceived: Readonly<Record<string, number>>;
  /** CDA code → messages, per direction. */
  readonly cdaCodesSent: Readonly<Record<string, number>>;
  readonly cdaCodesReceived: Readonly<Record<string, number>>;
  readonly balCreated: number;
  readonly balSuspended: number;
  readonly balDeleted: number;
}

const COLUMNS: ReadonlyArray<readonly [string, (r: IndicatorRow) => string | number]> = [
  ['month', (r) => r.month],
  ['address', (r) => r.address],
  ['type', (r) => r.type],
  ['status', (r) => r.status],
  ['created_at', (r) => r.createdAt],
  ['imap_logins', (r) => r.imapLogins],
  ['submission_logins', (r) => r.submissionLogins],
  ['application_logins', (r) => r.applicationLogins],
  ['active_days', (r) => r.activeDays],
  ['last_connection_at', (r) => r.lastConnectionAt ?? ''],
  ['messages_sent', (r) => r.messagesSent],
  ['messages_sent_intra', (r) => r.messagesSentIntra],
  ['messages_sent_inter', (r) => r.messagesSentInter],
  ['messages_sent_to_patients', (r) => r.messagesSentToPatients],
  ['messages_sent_with_cda', (r) => r.messagesSentWithCda],
  ['messages_received', (r) => r.messagesReceived],
  ['messages_received_intra', (r) => r.messagesReceivedIntra],
  ['messages_received_inter', (r) => r.messagesReceivedInter],
  ['messages_received_with_cda', (r) => r.messagesReceivedWithCda],
  ['messages_sent_with_ins', (r) => r.messagesSentWithIns],
  ['messages_received_with_ins', (r) => r.messagesReceivedWithIns],
  ['messages_sent_mes_fin', (r) => r.messagesSentMesFin],
  ['messages_received_mes_fin', (r) => r.messagesReceivedMesFin],
  ['dsn_sent', (r) => r.dsnSent],
  ['dsn_received', (r) => r.dsnReceived],
  ['mdn_sent', (r) => r.mdnSent],
  ['mdn_received', (r) => r.mdnReceived],
  ['software_sent', (r) => softwareCell(r.softwareSent)],
  ['software_received', (r) => softwareCell(r.softwareReceived)],
  ['cda_codes_sent', (r) => softwareCell(r.cdaCodesSent)],
  ['cda_codes_received', (r) => softwareCell(r.cdaCodesReceived)],
  ['bal_created', (r) => r.balCreated],
  ['bal_suspended', (r) => r.balSuspended],
  ['bal_deleted', (r) => r.balDeleted],
];

/** Distinct CDA codes listed per mailbox and direction in a month's row; the rest go to `(other)`. */
export const MAX_CDA_CODES_PER_MONTH = 200;

export const INDICATOR_CSV_COLUMNS: readonly string[] = COLUMNS.map(([name]) => name);

/** RFC 4180 §2: fields with a comma, a quote or a line break are quoted, quotes doubled. */
function csvField(value: string | number): string {
  const text = String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function softwareCell(counts: Readonly<Record<string, number>>): string {
  return Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, n]) => `${name.replace(/[;=]/g, '_')}=${n}`)
    .join(';');
}

export function indicatorCsvHeader(): string {
  return `${INDICATOR_CSV_COLUMNS.join(',')}\r\n`;
}

export function indicatorCsvLine(row: IndicatorRow): string {
  return `${COLUMNS.map(([, get]) => csvField(get(row))).join(',')}\r\n`;
}

export interface IndicatorReportOptions {
  readonly redis: Redis;
  readonly prefix: string;
  /** Configuration `lifecycle.timeZone`. */
  readonly timeZone: string;
  /** Configuration `lifecycle.indicatorsRetentionDays`: how far back a last login is looked for. */
  readonly retentionDays: number;
  readonly registry: Pick<LifecycleRegistry, 'list'>;
  readonly activity: ActivityReader;
}

// Mailboxes read per page of the registry: one SMISMEMBER per day of the month per page, then the
// hashes of the (day, mailbox) pairs that exist, pipelined.
const PAGE = 500;

type Counters = Record<string, number>;

/** A mailbox's month so far: summed counters, days with a login, latest login (ms, 0: none). */
interface DaySums {
  counters: Counters;
  software: Counters;
  cda: Counters;
  days: number;
  last: number;
}

/** Reads the daily aggregates back: one day of one mailbox, or a whole month as report rows. */
export class IndicatorReport {
  readonly #o: IndicatorReportOptions;
  readonly #keys: LifecycleKeys;

  constructor(options: IndicatorReportOptions) {
    this.#o = options;
    this.#keys = new LifecycleKeys(options.prefix);
  }

  /** The counters of one mailbox on one day (`YYYY-MM-DD`), and its software counts. */
  async day(
    address: string,
    day: string,
  ): Promise<{ counters: Counters; software: Record<string, number>; cda: Record<string, number> }> {
    const [counters, software, cda] = await Promise.all([
      this.#o.redis.hgetall(this.#keys.indicators(day, address)),
      this.#o.redis.hgetall(this.#keys.software(day, address)),
      this.#o.redis.hgetall(this.#keys.cda(day, address)),
    ]);
    return { counters: numbers(counters), software: numbers(software), cda: numbers(cda) };
  }

  /** The month's rows, page by page in address order (bounded memory for a million mailboxes). */
  async *rows(month: string): AsyncGenerator<IndicatorRow> {
    const days = daysOfMonth(month);
    const first = days[0]!;
    const last = days[days.length - 1]!;
    let cursor: string | undefined;
    do {
      const page = await this.#o.registry.list({ limit: PAGE, ...(cursor === undefined ? {} : { cursor }) });
      cursor = page.nextCursor;
      const bals = page.items.filter((b) => this.#existedDuring(b, first, last));
      if (bals.length > 0) yield* await this.#pageRows(month, days, bals);
    } while (cursor !== undefined);
  }

  #existedDuring(bal: Bal, first: string, last: string): boolean {
    const tz = this.#o.timeZone;
    if (dayInZone(Date.parse(bal.createdAt), tz) > last) return false;
    return bal.deletedAt === undefined || dayInZone(Date.parse(bal.deletedAt), tz) >= first;
  }

  async #pageRows(month: string, days: readonly string[], bals: readonly Bal[]): Promise<IndicatorRow[]> {
    const { redis } = this.#o;
    const addresses = bals.map((b) => b.address);
    const membership = redis.pipeline();
    for (const day of days) membership.smismember(this.#keys.indicatorDay(day), ...addresses);
    const present = replies(await membership.exec()) as number[][];
    const reads = redis.pipeline();
    const pairs: Array<[number, string]> = [];
    for (const [d, day] of days.entries()) {
      for (const [i, address] of addresses.entries()) {
        if (present[d]?.[i] !== 1) continue;
        pairs.push([i, day]);
        reads
          .hgetall(this.#keys.indicators(day, address))
          .hgetall(this.#keys.software(day, address))
          .hgetall(this.#keys.cda(day, address));
      }
    }
    const hashes = replies(await reads.exec()) as Array<Record<string, string>>;
    const sums = bals.map((): DaySums => ({ counters: {}, software: {}, cda: {}, days: 0, last: 0 }));
    for (const [n, [i]] of pairs.entries()) {
      const sum = sums[i]!;
      const counters = numbers(hashes[3 * n] ?? {});
      addInto(sum.counters, counters);
      addInto(sum.software, numbers(hashes[3 * n + 1] ?? {}));
      addInto(sum.cda, numbers(hashes[3 * n + 2] ?? {}));
      if (LOGIN_FIELDS.some((f) => (counters[f] ?? 0) > 0)) sum.days += 1;
      sum.last = Math.max(sum.last, counters.lastActivity ?? 0);
    }
    const latest = await this.#o.activity.lastActivityOf(addresses);
    const rows: IndicatorRow[] = [];
    for (const [i, bal] of bals.entries()) {
      const sum = sums[i]!;
      const lastMs = sum.last > 0 ? sum.last : await this.#lastBefore(bal.address, days, latest[i]);
      rows.push(toRow(month, bal, sum, lastMs));
    }
    return rows;
  }

  /**
   * Latest login up to the end of the month when there was none during it: the mailbox's last
   * activity if it is not after the month, else (used again since) the latest day with a login
   * before the month, within the retention.
   */
  async #lastBefore(
    address: string,
    days: readonly string[],
    latest: number | undefined,
  ): Promise<number | undefined> {
    if (latest === undefined) return undefined;
    if (dayInZone(latest, this.#o.timeZone) <= days[days.length - 1]!) return latest;
    const earlier = daysBefore(days[0]!, this.#o.retentionDays);
    const pipeline = this.#o.redis.pipeline();
    for (const day of earlier) pipeline.hget(this.#keys.indicators(day, address), 'lastActivity');
    const values = replies(await pipeline.exec()) as Array<string | null>;
    const found = values.find((v) => v !== null);
    return found === undefined || found === null ? undefined : Number(found);
  }
}

const LOGIN_FIELDS = ['login.imap', 'login.submission', 'login.application'] as const;

function toRow(month: string, bal: Bal, sum: DaySums, lastMs: number | undefined): IndicatorRow {
  const c = sum.counters;
  const n = (field: string) => c[field] ?? 0;
  const split = (counts: Counters, direction: string) => {
    const out: Record<string, number> = {};
    for (const [key, count] of Object.entries(counts)) {
      if (key.startsWith(`${direction}:`)) out[key.slice(direction.length + 1)] = count;
    }
    return out;
  };
  return {
    month,
    address: bal.address,
    type: bal.type,
    status: bal.status,
    createdAt: bal.createdAt,
    imapLogins: n('login.imap'),
    submissionLogins: n('login.submission'),
    applicationLogins: n('login.application'),
    activeDays: sum.days,
    lastConnectionAt: lastMs === undefined ? undefined : new Date(lastMs).toISOString(),
    messagesSent: n('sent'),
    messagesSentIntra: n('sent') - n('sent.inter'),
    messagesSentInter: n('sent.inter'),
    messagesSentToPatients: n('sent.patient'),
    messagesSentWithCda: n('sent.cda'),
    messagesReceived: n('received'),
    messagesReceivedIntra: n('received') - n('received.inter'),
    messagesReceivedInter: n('received.inter'),
    messagesReceivedWithCda: n('received.cda'),
    messagesSentWithIns: n('sent.ins'),
    messagesReceivedWithIns: n('received.ins'),
    messagesSentMesFin: n('sent.mes'),
    messagesReceivedMesFin: n('received.mes'),
    dsnSent: n('dsn.sent'),
    dsnReceived: n('dsn.received'),
    mdnSent: n('mdn.sent'),
    mdnReceived: n('mdn.received'),
    softwareSent: split(sum.software, 'sent'),
    softwareReceived: split(sum.software, 'received'),
    cdaCodesSent: capCodes(split(sum.cda, 'sent')),
    cdaCodesReceived: capCodes(split(sum.cda, 'received')),
    balCreated: n('bal.created'),
    balSuspended: n('bal.suspended'),
    balDeleted: n('bal.deleted'),
  };
}

/**
 * A month's codes, bounded: each day keeps up to 200 codes, so a month could list thousands; the
 * MAX_CDA_CODES_PER_MONTH most frequent (ties in code order) are kept, the rest summed in `(other)`.
 */
function capCodes(codes: Counters): Counters {
  const entries = Object.entries(codes).filter(([code]) => code !== OTHER_CDA);
  if (entries.length <= MAX_CDA_CODES_PER_MONTH) return codes;
  entries.sort(([a, x], [b, y]) => y - x || (a < b ? -1 : a > b ? 1 : 0));
  const out: Counters = {};
  let other = codes[OTHER_CDA] ?? 0;
  for (const [i, [code, count]] of entries.entries()) {
    if (i < MAX_CDA_CODES_PER_MONTH) out[code] = count;
    else other += count;
  }
  out[OTHER_CDA] = other;
  return out;
}

function numbers(hash: Record<string, string>): Counters {
  const out: Counters = {};
  for (const [k, v] of Object.entries(hash)) out[k] = Number(v);
  return out;
}

function addInto(into: Counters, from: Counters): void {
  for (const [k, v] of Object.entries(from)) {
    if (k === 'lastActivity') continue;
    into[k] = (into[k] ?? 0) + v;
  }
}

function replies(result: [Error | null, unknown][] | null): unknown[] {
  return (result ?? []).map(([err, reply]) => {
    if (err) {
      throw new GatewayError(
        'REGISTRY_UNAVAILABLE',
        `indicators unreadable: ${err.message}`,
        {},
        { cause: err },
      );
    }
    return reply;
  });
}
