import { describe, expect, it } from 'vitest';
import type { Principal } from '../../src/auth/types.js';
import { resolveAccess, type Bal, type Grant } from '../../src/registry/index.js';
import { ADELI, APP_DN_OTHER_SPELLING, DELEGATE, NOW, OWNER, bal } from '../helpers/rights-fixtures.js';

const person = (nationalId: string, via = 'psc'): Principal => ({ kind: 'person', nationalId, via });
const certifiedPerson = (nationalId: string): Principal => ({
  kind: 'person',
  nationalId,
  via: 'certificate',
  dn: `CN=${nationalId},O=CPS,C=FR`,
});
const application = (dn: string): Principal => ({ kind: 'application', dn, fingerprint: 'AB:CD' });

function grant(
  right: Grant['right'],
  subject: Grant['subject'],
  scopes: Grant['scopes'],
  expiresAt?: string,
): Grant {
  return {
    right,
    subject,
    scopes,
    ...(expiresAt === undefined ? {} : { expiresAt }),
    grantedBy: 'cli:test',
    grantedAt: '2026-01-01T00:00:00.000Z',
  };
}

const delegateRead = grant('delegate', { kind: 'person', nationalId: DELEGATE }, ['read']);
const delegateBoth = grant(
  'delegate',
  { kind: 'person', nationalId: DELEGATE },
  ['read', 'send'],
  '2026-03-02T00:00:00.000Z',
);
const expiringNow = grant(
  'delegate',
  { kind: 'person', nationalId: DELEGATE },
  ['read', 'send'],
  NOW.toISOString(),
);
const expiringSoon = grant(
  'delegate',
  { kind: 'person', nationalId: DELEGATE },
  ['read'],
  '2026-03-01T12:00:00.001Z',
);
const member = grant('member', { kind: 'person', nationalId: ADELI }, ['read', 'send']);
const appBinding = grant(
  'application',
  { kind: 'certificate', dn: 'C=FR,CN=lps.hopital.test,O=Hopital Exemple,OU=Informatique' },
  ['read', 'send'],
);
const ownerAlsoDelegate = grant('delegate', { kind: 'person', nationalId: OWNER }, ['read']);

describe('resolveAccess: which right a principal holds', () => {
  it.each<[string, Bal, Grant[], Principal, { right: string; scopes: string[]; expiresAt?: string } | null]>([
    ['PER owner by token', bal('PER'), [], person(OWNER), { right: 'owner', scopes: ['read', 'send'] }],
    [
      'PER owner by certificate',
      bal('PER'),
      [],
      certifiedPerson(OWNER),
      { right: 'owner', scopes: ['read', 'send'] },
    ],
    [
      'owner who is also a delegate gets owner',
      bal('PER'),
      [ownerAlsoDelegate],
      person(OWNER),
      { right: 'owner', scopes: ['read', 'send'] },
    ],
    [
      'delegate read only',
      bal('PER'),
      [delegateRead],
      person(DELEGATE),
      { right: 'delegate', scopes: ['read'] },
    ],
    [
      'delegate read and send, with its end',
      bal('PER'),
      [delegateBoth],
      person(DELEGATE),
      { right: 'delegate', scopes: ['read', 'send'], expiresAt: '2026-03-02T00:00:00.000Z' },
    ],
    [
      'delegate proven by certificate',
      bal('PER'),
      [delegateRead],
      certifiedPerson(DELEGATE),
      { right: 'delegate', scopes: ['read'] },
    ],
    ['delegate expired at the exact instant', bal('PER'), [expiringNow], person(DELEGATE), null],
    [
      'delegate one millisecond before expiry',
      bal('PER'),
      [expiringSoon],
      person(DELEGATE),
      { right: 'delegate', scopes: ['read'], expiresAt: '2026-03-01T12:00:00.001Z' },
    ],
    ['member on ORG', bal('ORG'), [member], person(ADELI), { right: 'member', scopes: ['read', 'send'] }],
    [
      'member id in lower case',
      bal('CAB'),
      [member],
      person('02a1234567'),
      { right: 'member', scopes: ['read', 'send'] },
    ],
    ['a member grant on PER never works', bal('PER'), [member], person(ADELI), null],
    [
      'application by DN in another spelling',
      bal('APP'),
      [appBinding],
      application(APP_DN_OTHER_SPELLING),
      { right: 'application', scopes: ['read', 'send'] },
    ],
    [
      'application with another DN',
      bal('APP'),
      [appBinding],
      application('CN=other.app,O=Hopital Exemple,C=FR'),
      null,
    ],
    ['application with a malformed DN', bal('APP'), [appBinding], application('garbage'), null],
    [
      'a person never matches an application binding',
      bal('APP'),
      [appBinding],
      certifiedPerson(DELEGATE),
      null,
    ],
    [
      'secret of this mailbox',
      bal('APP'),
      [],
      { kind: 'secret', bal: 'APP@OP.mssante.test' },
      { right: 'owner', scopes: ['read', 'send'] },
    ],
    ['secret of another mailbox', bal('APP'), [], { kind: 'secret', bal: 'other@op.mssante.test' }, null],
    ['person with no right', bal('PER'), [delegateRead], person('810005555555'), null],
    ['ORG owned by a structure: no person is owner', bal('ORG', { owner: OWNER }), [], person(OWNER), null],
  ])('%s', (_name, target, grants, principal, expected) => {
    const access = resolveAccess(target, grants, principal, NOW);
    if (expected === null) {
      expect(access).toBeNull();
      return;
    }
    expect(access).not.toBeNull();
    expect({
      right: access?.right,
      scopes: [...(access?.scopes ?? [])].sort(),
      expiresAt: access?.expiresAt,
    }).toEqual({
      expiresAt: undefined,
      ...expected,
    });
    expect(access?.bal).toBe(target.address);
    expect(access?.principal).toBe(principal);
  });
});
