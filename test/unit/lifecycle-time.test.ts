import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../src/errors/index.js';
import {
  dailyCron,
  dayInZone,
  daysOfMonth,
  frenchDate,
  isMonth,
  nextDailyRun,
  parseIsoInstant,
  zonedInstant,
} from '../../src/lifecycle/index.js';

const PARIS = 'Europe/Paris';
const at = (iso: string) => Date.parse(iso);

describe('lifecycle calendar', () => {
  it.each([
    ['2026-01-31T22:59:59Z', '2026-01-31'],
    ['2026-01-31T23:00:00Z', '2026-02-01'],
    ['2026-07-31T21:59:59Z', '2026-07-31'],
    ['2026-07-31T22:00:00Z', '2026-08-01'],
  ])('%s is %s in Paris', (instant, day) => {
    expect(dayInZone(at(instant), PARIS)).toBe(day);
  });

  it('writes French dates', () => {
    expect(frenchDate(at('2026-03-05T12:00:00Z'), PARIS)).toBe('05/03/2026');
  });

  it('lists the days of a month, leap years included, and refuses what is not a month', () => {
    expect(daysOfMonth('2028-02')).toHaveLength(29);
    expect(daysOfMonth('2026-02').at(-1)).toBe('2026-02-28');
    expect(daysOfMonth('2026-12')[0]).toBe('2026-12-01');
    expect(isMonth('2026-13')).toBe(false);
    expect(isMonth('2026-03')).toBe(true);
    expect(() => daysOfMonth('March')).toThrow(GatewayError);
    try {
      daysOfMonth('2026-3');
    } catch (err) {
      expect((err as GatewayError).code).toBe('INDICATORS_MONTH_INVALID');
    }
  });

  it('turns lifecycle.runAt into a daily cron pattern', () => {
    expect(dailyCron('03:15')).toBe('15 3 * * *');
    expect(dailyCron('00:00')).toBe('0 0 * * *');
    expect(() => dailyCron('3h15')).toThrow(GatewayError);
  });

  it('finds the wall-clock instant on either side of daylight saving time', () => {
    expect(new Date(zonedInstant('2026-01-15', '03:15', PARIS)).toISOString()).toBe(
      '2026-01-15T02:15:00.000Z',
    );
    expect(new Date(zonedInstant('2026-07-15', '03:15', PARIS)).toISOString()).toBe(
      '2026-07-15T01:15:00.000Z',
    );
    // 29 March 2026: clocks go from 02:00 to 03:00 in Paris; 03:15 exists, in summer time.
    expect(new Date(zonedInstant('2026-03-29', '03:15', PARIS)).toISOString()).toBe(
      '2026-03-29T01:15:00.000Z',
    );
  });

  it('gives the next run strictly after now', () => {
    const before = nextDailyRun(at('2026-01-15T02:00:00Z'), '03:15', PARIS);
    expect(new Date(before).toISOString()).toBe('2026-01-15T02:15:00.000Z');
    const after = nextDailyRun(at('2026-01-15T02:15:00Z'), '03:15', PARIS);
    expect(new Date(after).toISOString()).toBe('2026-01-16T02:15:00.000Z');
    const acrossDst = nextDailyRun(at('2026-03-28T03:00:00Z'), '03:15', PARIS);
    expect(new Date(acrossDst).toISOString()).toBe('2026-03-29T01:15:00.000Z');
  });
});

describe('ISO instants', () => {
  it('parses what toISOString writes as Date.parse does, and leaves every other form to it', () => {
    let seed = 16;
    const random = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    for (let i = 0; i < 5000; i += 1) {
      const ms = Math.floor((random() * 2 - 0.5) * 8_000_000_000_000);
      const text = new Date(ms).toISOString();
      expect(parseIsoInstant(text), text).toBe(ms);
    }
    for (const text of [
      '2024-02-29T23:59:59.999Z',
      '2026-02-29T00:00:00.000Z',
      '2026-02-30T00:00:00.000Z',
      '2026-04-31T00:00:00.000Z',
      '2026-13-01T00:00:00.000Z',
      '2026-00-10T00:00:00.000Z',
      '2026-01-10T24:00:00.000Z',
      '2026-01-10T23:60:00.000Z',
      '2026-01-10T23:00:60.000Z',
      '2026-01-1xT00:00:00.000Z',
      '2026-01-10T00:00:00.000+01:00',
      '2026-01-10T00:00:00Z',
      '2026-01-10',
      '1970-01-01T00:00:00.000Z',
      '0000-01-01T00:00:00.000Z',
      '+010000-01-01T00:00:00.000Z',
      '',
      'not a date',
    ]) {
      expect(parseIsoInstant(text), text).toEqual(Date.parse(text));
    }
  });
});
