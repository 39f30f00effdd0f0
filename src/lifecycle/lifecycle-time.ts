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
