import { describe, expect, it } from 'vitest';
import { endOfDay, isEndDateRefusal, parseEndDay } from '../../src/portal/end-date.js';

/** The end date of a right, as the portal's form sends it (issue #13: French dates, clear refusals). */
describe('parseEndDay', () => {
  const today = '2026-12-07';

  it('takes the date picker’s YYYY-MM-DD and a typed JJ/MM/AAAA alike', () => {
    expect(parseEndDay('2027-03-31', today)).toBe('2027-03-31');
    expect(parseEndDay('31/03/2027', today)).toBe('2027-03-31');
    expect(parseEndDay(' 1/4/2027 ', today)).toBe('2027-04-01');
    expect(parseEndDay('29/02/2028', today)).toBe('2028-02-29');
  });

  it('allows today, the right then working until midnight', () => {
    expect(parseEndDay('07/12/2026', today)).toBe(today);
  });

  it('refuses a past day, in French, naming it the French way', () => {
    let caught: unknown;
    try {
      parseEndDay('2026-12-06', today);
    } catch (err) {
      caught = err;
    }
    expect(isEndDateRefusal(caught)).toBe(true);
    expect((caught as Error).message).toBe(
      'La date de fin 06/12/2026 est déjà passée : choisissez aujourd’hui ou un jour à venir.',
    );
  });

  it.each(['31/02/2027', '2027-02-29', '2027-13-01', '00/01/2027', '31-12-2027', '12/31/2027', 'demain', ''])(
    'refuses %j as not a date, saying the format',
    (input) => {
      expect(() => parseEndDay(input, today)).toThrow(
        /n’est pas une date valable : écrivez-la au format jj\/mm\/aaaa/,
      );
    },
  );

  it('ends a right at the midnight after the chosen day, in the operator’s time zone', () => {
    expect(endOfDay('2027-03-31', 'Europe/Paris')).toBe('2027-03-31T22:00:00.000Z');
    expect(endOfDay('2027-01-31', 'Europe/Paris')).toBe('2027-01-31T23:00:00.000Z');
  });
});
