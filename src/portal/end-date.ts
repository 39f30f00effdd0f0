import { GatewayError, isGatewayError } from '../errors/index.js';
import { DAY_MS, zonedInstant } from '../lifecycle/index.js';

/** A refusal of the end-date field: its message is French, said as is to the person who typed it. */
const refusal = (message: string) => new GatewayError('RIGHT_INVALID', message, { field: 'jusqua' });

/** True for the refusals of `parseEndDay`. */
export function isEndDateRefusal(err: unknown): err is GatewayError {
  return isGatewayError(err) && err.code === 'RIGHT_INVALID' && err.details.field === 'jusqua';
}

const ISO = /^(\d{4})-(\d{2})-(\d{2})$/;
const FRENCH = /^(\d{1,2})\/(\d{1,2})\/(\d{4})$/;

/**
 * The end date of a right as the form sends it: `YYYY-MM-DD` from the browser's date picker, or
 * `JJ/MM/AAAA` typed where the browser shows a plain text field. Returns the calendar day
 * (`YYYY-MM-DD`) or throws a `RIGHT_INVALID` with a French message: a day that does not exist
 * (31/02), or one before `today` in the operator's time zone. Today itself is allowed: the right
 * then works until midnight.
 */
export function parseEndDay(input: string, today: string): string {
  const text = input.trim();
  const iso = ISO.exec(text);
  const fr = iso ? undefined : FRENCH.exec(text);
  const [y, m, d] = iso
    ? [iso[1], iso[2], iso[3]]
    : fr
      ? [fr[3], fr[2]?.padStart(2, '0'), fr[1]?.padStart(2, '0')]
      : [undefined, undefined, undefined];
  const day = `${y ?? ''}-${m ?? ''}-${d ?? ''}`;
  // Date.parse takes 2027-02-31 for 3 March: a real day survives the round trip unchanged.
  const ms = Date.parse(`${day}T00:00:00Z`);
  if (y === undefined || Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== day) {
    throw refusal(
      `La date de fin « ${text} » n’est pas une date valable : écrivez-la au format jj/mm/aaaa, par exemple 31/12/${today.slice(0, 4)}.`,
    );
  }
  if (day < today) {
    throw refusal(
      `La date de fin ${d}/${m}/${y} est déjà passée : choisissez aujourd’hui ou un jour à venir.`,
    );
  }
  return day;
}

/** A right "until 31/03" works through that whole day in the operator's time zone. */
export function endOfDay(day: string, timeZone: string): string {
  const next = new Date(Date.parse(`${day}T00:00:00Z`) + DAY_MS).toISOString().slice(0, 10);
  return new Date(zonedInstant(next, '00:00', timeZone)).toISOString();
}
