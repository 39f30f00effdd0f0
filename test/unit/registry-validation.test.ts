import { describe, expect, it } from 'vitest';
import { GatewayError, type ErrorCode } from '../../src/errors/index.js';
import {
  BAL_STATUSES,
  assertOurDomain,
  assertTransition,
  canTransition,
  parseBalAddress,
  parseBalOwner,
  parseBalType,
  parseNewBal,
  type BalStatus,
  type BalType,
} from '../../src/registry/index.js';

const DOMAINS = ['op.mssante.test', 'Hopital-Exemple.MSSante.fr'];

/** Runs `fn`, expecting a GatewayError with `code`; returns it for further checks. */
function expectGatewayError(fn: () => unknown, code: ErrorCode): GatewayError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(GatewayError);
  expect((caught as GatewayError).code).toBe(code);
  return caught as GatewayError;
}

describe('BAL address syntax (RFC 5321)', () => {
  it.each([
    ['dr.martin@op.mssante.test', 'dr.martin@op.mssante.test'],
    ['Dr.Martin@OP.MSSante.test', 'dr.martin@op.mssante.test'],
    ['  secretariat.cardio@op.mssante.test ', 'secretariat.cardio@op.mssante.test'],
    ["o'brien+tag@op.mssante.test", "o'brien+tag@op.mssante.test"],
    ['a!#$%&*/=?^_`{|}~-b@op.mssante.test', 'a!#$%&*/=?^_`{|}~-b@op.mssante.test'],
    [`${'a'.repeat(64)}@op.mssante.test`, `${'a'.repeat(64)}@op.mssante.test`],
    ['x@a-b.c-d.fr', 'x@a-b.c-d.fr'],
  ])('accepts %j as %j', (input, expected) => {
    expect(parseBalAddress(input)).toBe(expected);
  });

  const longDomain = `${Array.from({ length: 4 }, () => 'd'.repeat(63)).join('.')}.fr`; // 258 characters
  const longAddress = `${'a'.repeat(64)}@${Array.from({ length: 4 }, () => 'd'.repeat(47)).join('.')}.fr`;
  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['dr.martin', /no "@"/],
    ['@op.mssante.test', /before "@" is empty/],
    ['dr.martin@', /domain after "@" is empty/],
    ['Dr Martin <dr.martin@op.mssante.test>', /without a display name/],
    ['"dr martin"@op.mssante.test', /without a display name, quotes/],
    ['dr martin@op.mssante.test', /spaces/],
    ['dr..martin@op.mssante.test', /single dots/],
    ['.martin@op.mssante.test', /not starting or ending with a dot/],
    ['martin.@op.mssante.test', /single dots/],
    ['a@b@op.mssante.test', /only one "@"/],
    ['dr(martin)@op.mssante.test', /single dots/],
    ['médecin@op.mssante.test', /only ASCII/],
    [`${'a'.repeat(65)}@op.mssante.test`, /65 characters; the maximum is 64/],
    [`x@${longDomain}`, /258 characters; the maximum is 255/],
    [longAddress, /the maximum is 254/],
    ['x@localhost', /must be a host name/],
    ['x@-op.mssante.test', /must be a host name/],
    ['x@op-.mssante.test', /must be a host name/],
    ['x@op..mssante.test', /must be a host name/],
    ['x@op_1.mssante.test', /must be a host name/],
    [`x@${'d'.repeat(64)}.fr`, /each 1 to 63 characters/],
    ['x@[127.0.0.1]', /must be a host name/],
  ])('refuses %j with BAL_INVALID_ADDRESS saying %s', (input, message) => {
    const err = expectGatewayError(() => parseBalAddress(input), 'BAL_INVALID_ADDRESS');
    expect(err.message).toMatch(message);
  });
});

describe('BAL domain must be one of ours', () => {
  it.each([
    ['x@op.mssante.test', true],
    ['x@hopital-exemple.mssante.fr', true],
    ['x@mssante.test', false],
    ['x@sub.op.mssante.test', false],
    ['x@other-op.mssante.fr', false],
  ])('%s → ours: %s', (address, ours) => {
    if (ours) {
      expect(() => assertOurDomain(address, DOMAINS)).not.toThrow();
    } else {
      const err = expectGatewayError(() => assertOurDomain(address, DOMAINS), 'BAL_DOMAIN_NOT_OURS');
      expect(err.message).toContain('op.mssante.test, Hopital-Exemple.MSSante.fr');
    }
  });
});

describe('BAL type', () => {
  it.each([
    ['PER', 'PER'],
    ['org', 'ORG'],
    [' App ', 'APP'],
    ['CAB', 'CAB'],
  ])('accepts %j as %s', (input, expected) => {
    expect(parseBalType(input)).toBe(expected);
  });

  it.each(['', 'PERSON', 'PAT', 'ORG '.repeat(2), 'APP1'])('refuses %j listing the four types', (input) => {
    const err = expectGatewayError(() => parseBalType(input), 'BAL_INVALID_TYPE');
    expect(err.message).toMatch(/PER .*ORG .*APP .*CAB/);
  });
});

describe('BAL owner identifier', () => {
  it.each<[BalType, string, string]>([
    ['PER', '810001234567', '810001234567'],
    ['PER', ' 810001234567 ', '810001234567'],
    ['PER', '0751234567', '0751234567'],
    ['PER', '02a1234567', '02A1234567'],
    ['ORG', '1750712184', '1750712184'],
    ['ORG', '312345678900017', '312345678900017'],
    ['CAB', '410001234567', '410001234567'],
    ['APP', '2123456789', '2123456789'],
    ['APP', '1ab1234567', '1ab1234567'],
  ])('%s owner %j is accepted as %j', (type, input, expected) => {
    expect(parseBalOwner(type, input)).toBe(expected);
  });

  it.each<[BalType, string, RegExp]>([
    ['PER', '10001234567', /8 followed by the 11-digit RPPS/],
    ['PER', '8100012345678', /8 followed by the 11-digit RPPS/],
    ['PER', '81000123456X', /RPPS/],
    ['PER', '751234567', /0 followed by the 9-character ADELI/],
    ['PER', '1750712184', /national id/],
    ['PER', '', /national id/],
    ['ORG', '81000123', /9 to 15 characters/],
    ['ORG', 'A750712184', /a type digit followed by/],
    ['ORG', '1750-712184', /structure's national id/],
    ['CAB', '3123456789000170', /9 to 15 characters/],
    ['APP', '', /structure's national id/],
  ])('%s owner %j is refused: %s', (type, input, message) => {
    const err = expectGatewayError(() => parseBalOwner(type, input), 'BAL_INVALID_OWNER');
    expect(err.message).toMatch(message);
  });
});

describe('a creation request is checked in the order an operator fixes it', () => {
  it.each<[{ address: string; type: string; owner: string }, ErrorCode]>([
    [{ address: 'bad', type: 'XXX', owner: '' }, 'BAL_INVALID_ADDRESS'],
    [{ address: 'x@elsewhere.fr', type: 'XXX', owner: '' }, 'BAL_DOMAIN_NOT_OURS'],
    [{ address: 'x@op.mssante.test', type: 'XXX', owner: '' }, 'BAL_INVALID_TYPE'],
    [{ address: 'x@op.mssante.test', type: 'PER', owner: '1750712184' }, 'BAL_INVALID_OWNER'],
  ])('%j → %s', (input, code) => {
    expectGatewayError(() => parseNewBal(input, DOMAINS), code);
  });

  it('normalises a valid request', () => {
    expect(
      parseNewBal({ address: 'Dr.Martin@OP.mssante.test', type: 'per', owner: '810001234567' }, DOMAINS),
    ).toEqual({ address: 'dr.martin@op.mssante.test', type: 'PER', owner: '810001234567' });
  });
});

describe('status transitions', () => {
  const allowed: ReadonlyArray<[BalStatus, BalStatus]> = [
    ['active', 'suspended'],
    ['suspended', 'active'],
    ['active', 'deleted'],
    ['suspended', 'deleted'],
  ];
  const every = BAL_STATUSES.flatMap((from) =>
    BAL_STATUSES.map((to) => [from, to] as [BalStatus, BalStatus]),
  );

  it.each(every)('%s → %s', (from, to) => {
    const ok = allowed.some(([f, t]) => f === from && t === to);
    expect(canTransition(from, to)).toBe(ok);
    if (ok) {
      expect(() => assertTransition('x@op.mssante.test', from, to)).not.toThrow();
    } else {
      const err = expectGatewayError(
        () => assertTransition('x@op.mssante.test', from, to),
        'BAL_INVALID_TRANSITION',
      );
      expect(err.message).toMatch(from === 'deleted' ? /is deleted/ : /already|cannot become/);
    }
  });
});
