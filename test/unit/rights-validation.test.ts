import { describe, expect, it } from 'vitest';
import { GatewayError, type ErrorCode } from '../../src/errors/index.js';
import {
  parseGrantRequest,
  parseGrantSubject,
  type BalType,
  type GrantRequest,
} from '../../src/registry/index.js';
import {
  ADELI,
  APP_DN,
  APP_DN_OTHER_SPELLING,
  DELEGATE,
  NOW,
  OWNER,
  bal,
} from '../helpers/rights-fixtures.js';

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

describe('grant requests: accepted, in canonical form', () => {
  it.each<[string, BalType, GrantRequest, object]>([
    [
      'delegate read only on PER',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'] },
      { right: 'delegate', subject: { kind: 'person', nationalId: DELEGATE }, scopes: ['read'] },
    ],
    [
      'delegate scopes deduplicated and ordered',
      'PER',
      { right: 'Delegate', person: ` ${DELEGATE} `, scopes: ['send', 'READ', 'read'] },
      { right: 'delegate', scopes: ['read', 'send'] },
    ],
    [
      'ADELI id (Corsica) upper-cased',
      'PER',
      { right: 'delegate', person: '02a1234567', scopes: ['send'] },
      { subject: { kind: 'person', nationalId: ADELI }, scopes: ['send'] },
    ],
    [
      'delegate on an ORG mailbox',
      'ORG',
      { right: 'delegate', person: DELEGATE, scopes: ['read'] },
      { right: 'delegate', scopes: ['read'] },
    ],
    [
      'member on ORG, scopes implied',
      'ORG',
      { right: 'member', person: DELEGATE },
      { scopes: ['read', 'send'] },
    ],
    [
      'member on CAB, both scopes given',
      'CAB',
      { right: 'member', person: DELEGATE, scopes: ['send', 'read'] },
      {},
    ],
    [
      'application DN in another spelling, stored canonical',
      'APP',
      { right: 'application', certificateDn: APP_DN_OTHER_SPELLING },
      { subject: { kind: 'certificate', dn: 'C=FR,CN=lps.hopital.test,O=Hopital Exemple,OU=Informatique' } },
    ],
    [
      'expiry with an offset, stored in UTC',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'], expiresAt: '2026-03-31T20:00:00+02:00' },
      { expiresAt: '2026-03-31T18:00:00.000Z' },
    ],
  ])('%s', (_name, type, request, expected) => {
    const parsed = parseGrantRequest(bal(type), request, NOW);
    expect(parsed).toMatchObject(expected);
    expect(parsed.scopes.length).toBeGreaterThan(0);
  });
});

describe('grant requests: refused with the reason', () => {
  it.each<[string, BalType, GrantRequest, ErrorCode, RegExp]>([
    ['unknown right', 'PER', { right: 'owner', person: DELEGATE }, 'RIGHT_INVALID', /unknown right "owner"/],
    [
      'member on PER',
      'PER',
      { right: 'member', person: DELEGATE },
      'RIGHT_NOT_APPLICABLE',
      /give other people right delegate/,
    ],
    [
      'member on APP',
      'APP',
      { right: 'member', person: DELEGATE },
      'RIGHT_NOT_APPLICABLE',
      /right application/,
    ],
    [
      'delegate on APP',
      'APP',
      { right: 'delegate', person: DELEGATE, scopes: ['read'] },
      'RIGHT_NOT_APPLICABLE',
      /software only/,
    ],
    [
      'application on ORG',
      'ORG',
      { right: 'application', certificateDn: APP_DN },
      'RIGHT_NOT_APPLICABLE',
      /only APP/,
    ],
    [
      'application on PER',
      'PER',
      { right: 'application', certificateDn: APP_DN },
      'RIGHT_NOT_APPLICABLE',
      /only APP/,
    ],
    [
      'delegate without scopes',
      'PER',
      { right: 'delegate', person: DELEGATE },
      'RIGHT_INVALID',
      /at least one scope/,
    ],
    [
      'delegate with empty scopes',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: [] },
      'RIGHT_INVALID',
      /at least one scope/,
    ],
    [
      'unknown scope',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read', 'admin'] },
      'RIGHT_INVALID',
      /unknown scope "admin"/,
    ],
    [
      'member with read only',
      'ORG',
      { right: 'member', person: DELEGATE, scopes: ['read'] },
      'RIGHT_INVALID',
      /always has scopes read and send/,
    ],
    [
      'application with send only',
      'APP',
      { right: 'application', certificateDn: APP_DN, scopes: ['send'] },
      'RIGHT_INVALID',
      /always/,
    ],
    [
      'bad national id',
      'PER',
      { right: 'delegate', person: '12345', scopes: ['read'] },
      'RIGHT_INVALID',
      /not a national id/,
    ],
    [
      'RPPS without its 8',
      'PER',
      { right: 'delegate', person: '10001234567', scopes: ['read'] },
      'RIGHT_INVALID',
      /not a national id/,
    ],
    ['no subject', 'PER', { right: 'delegate', scopes: ['read'] }, 'RIGHT_INVALID', /exactly one subject/],
    [
      'two subjects',
      'APP',
      { right: 'application', person: DELEGATE, certificateDn: APP_DN },
      'RIGHT_INVALID',
      /exactly one subject/,
    ],
    [
      'application to a person',
      'APP',
      { right: 'application', person: DELEGATE },
      'RIGHT_INVALID',
      /given to a certificate/,
    ],
    [
      'member to a certificate',
      'ORG',
      { right: 'member', certificateDn: APP_DN },
      'RIGHT_INVALID',
      /given to a person/,
    ],
    [
      'a DN that is not one',
      'APP',
      { right: 'application', certificateDn: 'just text' },
      'RIGHT_INVALID',
      /is not a DN/,
    ],
    [
      'the owner as delegate',
      'PER',
      { right: 'delegate', person: OWNER, scopes: ['read'] },
      'RIGHT_NOT_APPLICABLE',
      /owner needs no delegation/,
    ],
    [
      'expiry in the past',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'], expiresAt: '2026-02-01T00:00:00Z' },
      'RIGHT_INVALID',
      /not in the future/,
    ],
    [
      'expiry now',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'], expiresAt: NOW.toISOString() },
      'RIGHT_INVALID',
      /not in the future/,
    ],
    [
      'expiry without a time zone',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'], expiresAt: '2026-04-01T00:00:00' },
      'RIGHT_INVALID',
      /with a time zone/,
    ],
    [
      'expiry as a date only',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'], expiresAt: '2026-04-01' },
      'RIGHT_INVALID',
      /ISO 8601 instant/,
    ],
    [
      'expiry impossible date',
      'PER',
      { right: 'delegate', person: DELEGATE, scopes: ['read'], expiresAt: '2026-13-45T00:00:00Z' },
      'RIGHT_INVALID',
      /ISO 8601/,
    ],
  ])('%s', (_name, type, request, code, message) => {
    expect(expectGatewayError(() => parseGrantRequest(bal(type), request, NOW), code).message).toMatch(
      message,
    );
  });

  it('refuses any grant on a deleted mailbox', () => {
    const deleted = bal('PER', { status: 'deleted', deletedAt: '2026-02-01T00:00:00.000Z' });
    const request = { right: 'delegate', person: DELEGATE, scopes: ['read'] };
    expectGatewayError(() => parseGrantRequest(deleted, request, NOW), 'BAL_INVALID_TRANSITION');
  });

  it('names the subject of a revocation the same way', () => {
    expect(parseGrantSubject({ person: ' 02a1234567 ' })).toEqual({ kind: 'person', nationalId: ADELI });
    expect(parseGrantSubject({ certificateDn: APP_DN_OTHER_SPELLING })).toEqual(
      parseGrantSubject({ certificateDn: APP_DN }),
    );
    expectGatewayError(() => parseGrantSubject({}), 'RIGHT_INVALID');
  });
});
