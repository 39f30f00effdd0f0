import { describe, expect, it } from 'vitest';
import { parseBalAddress } from '../../src/registry/index.js';
import { routeByDomain } from '../../src/routing/index.js';
import {
  addressKey,
  checkAddress,
  normalizeAddress,
  normalizeDomain,
  parseAddress,
} from '../../src/shared/index.js';

// The canonical form (src/shared/address.ts): trimmed, lower-case, one trailing dot dropped, IDNA
// A-labels for the domain, ASCII Dot-string local part, RFC 5321 lengths.
describe('canonical mail domain', () => {
  it.each([
    ['op.mssante.fr', 'op.mssante.fr'],
    ['OP.MSSante.FR', 'op.mssante.fr'],
    [' op.mssante.fr ', 'op.mssante.fr'],
    ['op.mssante.fr.', 'op.mssante.fr'],
    ['hôpital.mssante.fr', 'xn--hpital-ixa.mssante.fr'],
    ['HÔPITAL.mssante.fr.', 'xn--hpital-ixa.mssante.fr'],
    ['xn--hpital-ixa.mssante.fr', 'xn--hpital-ixa.mssante.fr'],
    ['a-b.c-d.fr', 'a-b.c-d.fr'],
  ])('%j → %j', (input, canonical) => {
    expect(normalizeDomain(input)).toBe(canonical);
  });

  it.each([
    [''],
    ['.'],
    ['localhost'],
    ['op..mssante.fr'],
    ['op.mssante.fr..'],
    ['-op.mssante.fr'],
    ['op_1.mssante.fr'],
    ['[127.0.0.1]'],
    [`${'d'.repeat(64)}.fr`],
    [`${Array.from({ length: 4 }, () => 'd'.repeat(63)).join('.')}.fr`],
  ])('refuses %j', (input) => {
    expect(normalizeDomain(input)).toBeUndefined();
  });
});

describe('canonical mail address', () => {
  it.each([
    ['jeanne@op.mssante.fr', 'jeanne', 'op.mssante.fr'],
    ['  Jeanne.Dupont@OP.MSSante.fr ', 'jeanne.dupont', 'op.mssante.fr'],
    ['x@op.mssante.fr.', 'x', 'op.mssante.fr'],
    ['jeanne@hôpital.mssante.fr', 'jeanne', 'xn--hpital-ixa.mssante.fr'],
    ['Jeanne@Hôpital.MSSante.fr.', 'jeanne', 'xn--hpital-ixa.mssante.fr'],
    ["o'brien+tag@op.mssante.fr", "o'brien+tag", 'op.mssante.fr'],
    ['123456789012345@patient.mssante.fr', '123456789012345', 'patient.mssante.fr'],
  ])('%j → local %j, domain %j', (input, local, domain) => {
    const address = `${local}@${domain}`;
    expect(parseAddress(input)).toEqual({ local, domain, address });
    expect(normalizeAddress(input)).toBe(address);
    expect(addressKey(input)).toBe(address);
  });

  it.each([
    ['', /empty/],
    ['jeanne', /no "@"/],
    ['@op.mssante.fr', /before "@" is empty/],
    ['jeanne@', /domain after "@" is empty/],
    ['jeanne@.', /domain after "@" is empty/],
    ['Jeanne <jeanne@op.mssante.fr>', /without a display name/],
    ['"jeanne d"@op.mssante.fr', /quotes/],
    ['jeanne d@op.mssante.fr', /spaces/],
    ['médecin@op.mssante.fr', /only ASCII/],
    ['jeanne..d@op.mssante.fr', /single dots/],
    ['a@b@op.mssante.fr', /only one "@"/],
    [`${'a'.repeat(65)}@op.mssante.fr`, /the maximum is 64/],
    ['jeanne@localhost', /must be a host name/],
    ['jeanne@op..mssante.fr', /must be a host name/],
    [
      `${'a'.repeat(64)}@${Array.from({ length: 4 }, () => 'd'.repeat(47)).join('.')}.fr`,
      /the maximum is 254/,
    ],
  ])('refuses %j saying %s', (input, problem) => {
    const checked = checkAddress(input);
    expect(checked.ok).toBe(false);
    expect(checked.ok ? '' : checked.problem).toMatch(problem);
    expect(parseAddress(input)).toBeUndefined();
    expect(normalizeAddress(input)).toBeUndefined();
  });

  it('keys an invalid address by its trimmed lower-case form, so it matches no mailbox', () => {
    expect(addressKey(' Médecin@OP.mssante.fr ')).toBe('médecin@op.mssante.fr');
  });
});

// The same two inputs through every entry point that used to have its own parser.
describe('one answer everywhere', () => {
  const ours = new Set(['op.mssante.fr', 'xn--hpital-ixa.mssante.fr']);
  it.each([
    ['x@op.mssante.fr.', 'x@op.mssante.fr'],
    ['jeanne@hôpital.mssante.fr', 'jeanne@xn--hpital-ixa.mssante.fr'],
  ])('%j is %j for the registry, routing and the directory', (input, canonical) => {
    expect(parseBalAddress(input)).toBe(canonical);
    expect(routeByDomain(input, ours, { dnsOf: () => new Set() })).toEqual({
      kind: 'lookup',
      address: canonical,
    });
    expect(normalizeAddress(input)).toBe(canonical);
    expect(addressKey(input)).toBe(canonical);
  });
});
