import { describe, expect, it } from 'vitest';
import { assertPersonMayManage, type Grant, type GrantRight } from '../../src/registry/index.js';
import { DELEGATE, NOW, OWNER, bal } from '../helpers/rights-fixtures.js';

/** Who may change rights in the portal (issue #13): one table, the rule the portal calls. */
const manager = (expiresAt?: string): Grant => ({
  right: 'manager',
  subject: { kind: 'person', nationalId: DELEGATE },
  scopes: ['read', 'send'],
  ...(expiresAt === undefined ? {} : { expiresAt }),
  grantedBy: 'cli:support',
  grantedAt: '2026-01-01T00:00:00.000Z',
});

describe('assertPersonMayManage', () => {
  const cases: Array<[string, Parameters<typeof bal>[0], Grant[], string, GrantRight, boolean]> = [
    ['the owner of a PER mailbox, its delegates', 'PER', [], OWNER, 'delegate', true],
    ['the owner of a PER mailbox, never members', 'PER', [], OWNER, 'member', false],
    ['someone else, on a PER mailbox', 'PER', [], DELEGATE, 'delegate', false],
    ['a manager of an ORG mailbox, its members', 'ORG', [manager()], DELEGATE, 'member', true],
    ['a manager of a CAB mailbox, its managers', 'CAB', [manager()], DELEGATE, 'manager', true],
    ['a manager of an ORG mailbox, its delegates', 'ORG', [manager()], DELEGATE, 'delegate', true],
    ['a manager, never application bindings', 'ORG', [manager()], DELEGATE, 'application', false],
    ['a manager whose right ran out', 'ORG', [manager('2026-02-01T00:00:00Z')], DELEGATE, 'member', false],
    ['nobody without a manager right, on an ORG mailbox', 'ORG', [], OWNER, 'member', false],
  ];
  it.each(cases)('%s', (_why, type, grants, person, right, allowed) => {
    const call = () => assertPersonMayManage(bal(type), grants, person, right, NOW);
    if (allowed) expect(call).not.toThrow();
    else expect(call).toThrow(expect.objectContaining({ code: 'RIGHT_FORBIDDEN' }));
  });
});
