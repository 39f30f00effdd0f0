import { GatewayError } from '../errors/index.js';

/**
 * Calendar helpers of the lifecycle: days in the operator's time zone (configuration
 * `lifecycle.timeZone`, Europe/Paris by default), because the agency's monthly figures and the dates
 * a professional reads in a warning are French calendar days, not UTC ones.
 */

export const DAY_MS = 86_400_000;

// Intl formatters are costly to build and cheap to use: one per time zone, kept.
const dayFormatters = new Map<string, Intl.DateTimeFormat>();

function dayFormatter(timeZone: string): Intl.DateTimeFormat {
  let f = dayFormatters.get(timeZone);
  if (f === undefined) {
    // en-CA formats a date as YYYY-MM-DD.
    f = new Intl.DateTimeFormat('en-CA', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormatters.set(timeZone, f);
  }
  return f;
}

/** The calendar day (`YYYY-MM-DD`) of an instant in `timeZone`. */
export function dayInZone(ms: number, timeZone: string): string {
  return dayFormatter(timeZone).format(ms);
}

/** The calendar month (`YYYY-MM`) of an instant in `timeZone`. */
export function monthInZone(ms: number, timeZone: string): string {
  return dayInZone(ms, timeZone).slice(0, 7);
}

/** `JJ/MM/AAAA`, the French way of writing the day of an instant in `timeZone`. */
export function frenchDate(ms: number, timeZone: string): string {
  const [y, m, d] = dayInZone(ms, timeZone).split('-');
  return `${d}/${m}/${y}`;
}

const MONTH = /^(\d{4})-(0[1-9]|1[0-2])$/;

/** True for `YYYY-MM` with a real month. */
export function isMonth(value: string): boolean {
  return MONTH.test(value);
}

/** Every day (`YYYY-MM-DD`) of a month given as `YYYY-MM`, in order. */
export function daysOfMonth(month: string): string[] {
  const m = MONTH.exec(month);
  if (!m)
    throw new GatewayError(
      'INDICATORS_MONTH_INVALID',
      `"${month}" is not a month: give YYYY-MM, e.g. 2026-03`,
      { month },
    );
  const year = Number(m[1]);
  const index = Number(m[2]);
  // Day 0 of the next month is the last day of this one.
  const count = new Date(Date.UTC(year, index, 0)).getUTCDate();
  return Array.from({ length: count }, (_, i) => `${month}-${String(i + 1).padStart(2, '0')}`);
}

/** The `count` days before `day` (`YYYY-MM-DD`), latest first; calendar arithmetic, no time zone. */
export function daysBefore(day: string, count: number): string[] {
  const start = Date.parse(`${day}T00:00:00Z`);
  return Array.from({ length: count }, (_, i) =>
    new Date(start - (i + 1) * DAY_MS).toISOString().slice(0, 10),
  );
}

/** The BullMQ cron pattern of a daily run at `HH:MM` (configuration `lifecycle.runAt`). */
export function dailyCron(runAt: string): string {
  const m = /^([01][0-9]|2[0-3]):([0-5][0-9])$/.exec(runAt);
  if (!m) throw new GatewayError('CONFIG_INVALID', `lifecycle.runAt "${runAt}" is not HH:MM`);
  return `${Number(m[2])} ${Number(m[1])} * * *`;
}

const partFormatters = new Map<string, Intl.DateTimeFormat>();

/** Offset of `timeZone` from UTC at the instant `ms`, in ms (Paris: +1 h in winter, +2 h in summer). */
function zoneOffset(ms: number, timeZone: string): number {
  let f = partFormatters.get(timeZone);
  if (f === undefined) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    partFormatters.set(timeZone, f);
  }
  const p: Record<string, number> = {};
  for (const part of f.formatToParts(ms)) if (part.type !== 'literal') p[part.type] = Number(part.value);
  const wall = Date.UTC(p.year!, p.month! - 1, p.day, p.hour, p.minute, p.second);
  return wall - (ms - (((ms % 1000) + 1000) % 1000));
}

/** The instant when the wall clock of `timeZone` shows `HH:MM` on `day` (`YYYY-MM-DD`). */
export function zonedInstant(day: string, hhmm: string, timeZone: string): number {
  const [y, m, d] = day.split('-').map(Number);
  const [hh, mm] = hhmm.split(':').map(Number);
  const wall = Date.UTC(y!, m! - 1, d, hh, mm);
  // Two passes settle the offset on either side of a daylight-saving change.
  const first = wall - zoneOffset(wall, timeZone);
  return wall - zoneOffset(first, timeZone);
}

/** The next daily run at `runAt` (HH:MM in `timeZone`) strictly after `now` (ms). */
export function nextDailyRun(now: number, runAt: string, timeZone: string): number {
  const today = dayInZone(now, timeZone);
  const todayRun = zonedInstant(today, runAt, timeZone);
  if (todayRun > now) return todayRun;
  const tomorrow = new Date(Date.parse(`${today}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
  return zonedInstant(tomorrow, runAt, timeZone);
}

/**
 * `Date.parse` of an ISO instant, with a fast path for the form the registry writes
 * (`toISOString`: `YYYY-MM-DDTHH:MM:SS.sssZ`): the daily run parses two per mailbox, a million
 * times, and `Date.parse` is most of the policy's own cost there. Anything else (other forms,
 * days past the 28th whose validity depends on the month) goes through `Date.parse`.
 */
export function parseIsoInstant(text: string): number {
  if (
    text.length !== 24 ||
    text.charCodeAt(4) !== 45 || // -
    text.charCodeAt(7) !== 45 ||
    text.charCodeAt(10) !== 84 || // T
    text.charCodeAt(13) !== 58 || // :
    text.charCodeAt(16) !== 58 ||
    text.charCodeAt(19) !== 46 || // .
    text.charCodeAt(23) !== 90 // Z
  ) {
    return Date.parse(text);
  }
  const year = digits(text, 0, 4);
  const month = digits(text, 5, 2);
  const day = digits(text, 8, 2);
  const hours = digits(text, 11, 2);
  const minutes = digits(text, 14, 2);
  const seconds = digits(text, 17, 2);
  const millis = digits(text, 20, 3);
  if (
    year < 0 ||
    month < 1 ||
    month > 12 ||
    day < 1 ||
    day > 28 ||
    hours < 0 ||
    hours > 23 ||
    minutes < 0 ||
    minutes > 59 ||
    seconds < 0 ||
    seconds > 59 ||
    millis < 0
  ) {
    return Date.parse(text);
  }
  // Days from 1970-01-01 of a civil date (H. Hinnant's days_from_civil).
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  const days = era * 146_097 + doe - 719_468;
  return days * DAY_MS + ((hours * 60 + minutes) * 60 + seconds) * 1000 + millis;
}

/** The decimal number of `length` digits at `start`; -1 if one is not a digit. */
function digits(text: string, start: number, length: number): number {
  let n = 0;
  for (let i = start; i < start + length; i += 1) {
    const d = text.charCodeAt(i) - 48;
    if (d < 0 || d > 9) return -1;
    n = n * 10 + d;
  }
  return n;
}
