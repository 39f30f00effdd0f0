import { describe, expect, it } from 'vitest';
import type { GrantView } from '../../src/registry/index.js';
import { useAdminHarness } from '../helpers/admin-harness.js';
import { balPath, call, expectProblem } from '../helpers/admin-http.js';
import {
  ADELI_C,
  FINESS,
  RPPS_A,
  RPPS_B,
  SettableClock,
  createBal,
  expectRightsIndexConsistent,
  rightsPath,
} from '../helpers/admin-rights.js';

const APP_DN = 'CN=lps.hopital.test,OU=Informatique,O=Hopital Exemple,C=FR';
const APP_DN_OTHER_SPELLING = 'c=FR; o=Hopital  Exemple; ou=Informatique; cn=lps.hopital.test';
const APP_DN_CANONICAL = 'C=FR,CN=lps.hopital.test,O=Hopital Exemple,OU=Informatique';

const start = useAdminHarness();

describe('rights over HTTP: grant, list, revoke', () => {
  it('grants delegate, member and application rights, lists them, revokes them, journaling each', async () => {
    const clock = new SettableClock('2026-03-01T12:00:00Z');
    const h = await start({ clock });
    const per = await createBal(h, 'PER', RPPS_A);
    const org = await createBal(h, 'ORG', FINESS);
    const app = await createBal(h, 'APP', FINESS);

    const delegated = await call(h, 'POST', rightsPath(per.toUpperCase()), {
      json: { right: 'delegate', person: RPPS_B, scopes: ['read'], expiresAt: '2026-03-31T20:00:00+02:00' },
    });
    expect(delegated.status).toBe(201);
    expect(delegated.body).toEqual({
      address: per,
      right: 'delegate',
      subject: { kind: 'person', nationalId: RPPS_B },
      scopes: ['read'],
      expiresAt: '2026-03-31T18:00:00.000Z',
      grantedBy: 'admin-api:anonymous',
      grantedAt: '2026-03-01T12:00:00.000Z',
      expired: false,
    });
    const member = await call(h, 'POST', rightsPath(org), {
      json: { right: 'member', person: '02a1234567' },
    });
    expect(member.body).toMatchObject({ subject: { nationalId: ADELI_C }, scopes: ['read', 'send'] });
    const bound = await call(h, 'POST', rightsPath(app), {
      json: { right: 'application', certificateDn: APP_DN_OTHER_SPELLING },
    });
    expect(bound.status).toBe(201);
    expect(bound.body).toMatchObject({ subject: { kind: 'certificate', dn: APP_DN_CANONICAL } });

    const listed = await call(h, 'GET', rightsPath(per));
    expect(listed.body).toEqual({ items: [delegated.body] });
    clock.set('2026-03-31T18:00:00Z');
    const atExpiry = (await call(h, 'GET', rightsPath(per))).body as { items: GrantView[] };
    expect(atExpiry.items.map((g) => g.expired)).toEqual([true]);
    expect(await h.registry.balsForCertificate(APP_DN)).toEqual([
      { bal: app, type: 'APP', status: 'active', right: 'application', scopes: ['read', 'send'] },
    ]);

    const revoked = await call(h, 'DELETE', rightsPath(per, `?person=${RPPS_B}`));
    expect(revoked.status).toBe(200);
    expect(revoked.body).toMatchObject({ right: 'delegate', expired: true });
    const unbound = await call(h, 'DELETE', rightsPath(app, `?certificateDn=${encodeURIComponent(APP_DN)}`));
    expect(unbound.body).toMatchObject({ right: 'application' });
    expect((await call(h, 'GET', rightsPath(per))).body).toEqual({ items: [] });
    const again = await call(h, 'DELETE', rightsPath(per, `?person=${RPPS_B}`));
    expect(expectProblem(again, 404, 'RIGHT_NOT_FOUND')).toMatch(`person ${RPPS_B} holds no right on ${per}`);

    const rightEvents = h
      .journal()
      .filter((e) => e.event.startsWith('registry.right.'))
      .map(({ event, address, right, subject, scopes, expiresAt }) => ({
        event,
        address,
        right,
        subject,
        scopes,
        expiresAt,
      }));
    expect(rightEvents).toEqual([
      {
        event: 'registry.right.granted',
        address: per,
        right: 'delegate',
        subject: { kind: 'person', nationalId: RPPS_B },
        scopes: ['read'],
        expiresAt: '2026-03-31T18:00:00.000Z',
      },
      expect.objectContaining({ event: 'registry.right.granted', address: org, right: 'member' }),
      expect.objectContaining({ event: 'registry.right.granted', address: app, right: 'application' }),
      expect.objectContaining({ event: 'registry.right.revoked', address: per, right: 'delegate' }),
      expect.objectContaining({ event: 'registry.right.revoked', address: app, right: 'application' }),
    ]);
    expect(h.journal().find((e) => e.event === 'registry.right.granted')?.actor).toEqual({
      kind: 'admin-api',
      id: 'anonymous',
      remote: '127.0.0.1',
    });
    await expectRightsIndexConsistent(h);
  });

  it('replaces the grant of the same subject rather than adding a second one', async () => {
    const h = await start();
    const org = await createBal(h, 'ORG', FINESS);
    await call(h, 'POST', rightsPath(org), { json: { right: 'delegate', person: RPPS_B, scopes: ['read'] } });
    await call(h, 'POST', rightsPath(org), { json: { right: 'member', person: RPPS_B } });
    const listed = (await call(h, 'GET', rightsPath(org))).body as { items: GrantView[] };
    expect(listed.items.map((g) => [g.right, g.scopes])).toEqual([['member', ['read', 'send']]]);
    expect(h.journal().filter((e) => e.event === 'registry.right.granted')[1]).toMatchObject({
      replaced: { right: 'delegate', scopes: ['read'] },
    });
    expect(await expectRightsIndexConsistent(h)).toEqual([`${org} person:${RPPS_B}`]);
  });
});

describe('which mailboxes may this person open', () => {
  it('lists owned PER mailboxes and live grants across mailboxes, leaving out deleted ones', async () => {
    const clock = new SettableClock('2026-03-01T12:00:00Z');
    const h = await start({ clock });
    const own = await createBal(h, 'PER', RPPS_A, 'own');
    const colleague = await createBal(h, 'PER', RPPS_B, 'colleague');
    const service = await createBal(h, 'ORG', FINESS, 'service');
    const practice = await createBal(h, 'CAB', FINESS, 'practice');
    const gone = await createBal(h, 'ORG', FINESS, 'gone');
    const other = await createBal(h, 'PER', RPPS_B, 'other');
    const expiresAt = '2026-03-10T00:00:00.000Z';
    const grants: Array<[string, object]> = [
      [colleague, { right: 'delegate', person: RPPS_A, scopes: ['read'] }],
      [service, { right: 'member', person: RPPS_A }],
      [practice, { right: 'delegate', person: RPPS_A, scopes: ['send', 'read'], expiresAt }],
      [gone, { right: 'member', person: RPPS_A }],
      [other, { right: 'delegate', person: ADELI_C, scopes: ['read'] }],
    ];
    for (const [address, json] of grants)
      expect((await call(h, 'POST', rightsPath(address), { json })).status).toBe(201);
    await call(h, 'POST', balPath(service, '/suspend'), { json: { reason: 'audit' } });
    await call(h, 'DELETE', balPath(gone));

    const answer = await call(h, 'GET', `/v1/persons/${RPPS_A}/bals`);
    expect(answer.status).toBe(200);
    const expected = [
      { bal: own, type: 'PER', status: 'active', right: 'owner', scopes: ['read', 'send'] },
      { bal: colleague, type: 'PER', status: 'active', right: 'delegate', scopes: ['read'] },
      { bal: service, type: 'ORG', status: 'suspended', right: 'member', scopes: ['read', 'send'] },
      {
        bal: practice,
        type: 'CAB',
        status: 'active',
        right: 'delegate',
        scopes: ['read', 'send'],
        expiresAt,
      },
    ].sort((a, b) => (a.bal < b.bal ? -1 : 1));
    expect(answer.body).toEqual({ nationalId: RPPS_A, items: expected });
    // At the expiry instant the delegation no longer counts.
    const later = await h.registry.balsForPerson(RPPS_A, new Date(expiresAt));
    expect(later.map((b) => b.bal)).toEqual(expected.filter((b) => b.bal !== practice).map((b) => b.bal));
    expect((await call(h, 'GET', `/v1/persons/02a1234567/bals`)).body).toEqual({
      nationalId: ADELI_C,
      items: [{ bal: other, type: 'PER', status: 'active', right: 'delegate', scopes: ['read'] }],
    });
    expect((await call(h, 'GET', '/v1/persons/810005555555/bals')).body).toEqual({
      nationalId: '810005555555',
      items: [],
    });
    const bad = await call(h, 'GET', '/v1/persons/12345/bals');
    expect(expectProblem(bad, 400, 'RIGHT_INVALID')).toMatch(/not a national person id/);
  });
});

describe('refused requests change nothing', () => {
  it.each<[string, string, string, object | undefined, number, string]>([
    ['member on PER', 'POST', 'per', { right: 'member', person: RPPS_B }, 409, 'RIGHT_NOT_APPLICABLE'],
    [
      'application on ORG',
      'POST',
      'org',
      { right: 'application', certificateDn: APP_DN },
      409,
      'RIGHT_NOT_APPLICABLE',
    ],
    ['unknown right', 'POST', 'per', { right: 'admin', person: RPPS_B }, 400, 'RIGHT_INVALID'],
    ['bad person id', 'POST', 'org', { right: 'member', person: '81000' }, 400, 'RIGHT_INVALID'],
    ['delegate without scope', 'POST', 'per', { right: 'delegate', person: RPPS_B }, 400, 'RIGHT_INVALID'],
    [
      'expiry in the past',
      'POST',
      'per',
      { right: 'delegate', person: RPPS_B, scopes: ['read'], expiresAt: '2020-01-01T00:00:00Z' },
      400,
      'RIGHT_INVALID',
    ],
    [
      'owner as own delegate',
      'POST',
      'per',
      { right: 'delegate', person: RPPS_A, scopes: ['read'] },
      409,
      'RIGHT_NOT_APPLICABLE',
    ],
    ['unknown field', 'POST', 'org', { right: 'member', person: RPPS_B, role: 'x' }, 400, 'REQUEST_INVALID'],
    [
      'scopes not strings',
      'POST',
      'per',
      { right: 'delegate', person: RPPS_B, scopes: [{}] },
      400,
      'REQUEST_INVALID',
    ],
    ['missing right', 'POST', 'org', { person: RPPS_B }, 400, 'REQUEST_INVALID'],
    ['no such mailbox', 'POST', 'missing', { right: 'member', person: RPPS_B }, 404, 'BAL_NOT_FOUND'],
    [
      'deleted mailbox',
      'POST',
      'deleted',
      { right: 'member', person: RPPS_B },
      409,
      'BAL_INVALID_TRANSITION',
    ],
    ['revoke with two subjects', 'DELETE', 'org', undefined, 400, 'RIGHT_INVALID'],
    ['revoke a right nobody holds', 'DELETE', 'per', undefined, 404, 'RIGHT_NOT_FOUND'],
  ])('%s', async (_name, method, target, json, status, code) => {
    const h = await start();
    const targets: Record<string, string> = {
      per: await createBal(h, 'PER', RPPS_A),
      org: await createBal(h, 'ORG', FINESS),
      deleted: await createBal(h, 'ORG', FINESS),
      missing: 'nobody@op.mssante.test',
    };
    await call(h, 'POST', rightsPath(targets.org!), { json: { right: 'member', person: ADELI_C } });
    await call(h, 'DELETE', balPath(targets.deleted!));
    const before = await h.keySpace();
    const journaled = h.journal().length;
    const query = target === 'org' ? `?person=${RPPS_B}&certificateDn=CN=x` : `?person=${RPPS_B}`;
    const path = method === 'DELETE' ? rightsPath(targets[target]!, query) : rightsPath(targets[target]!);
    expectProblem(await call(h, method, path, json === undefined ? {} : { json }), status, code);
    expect(await h.keySpace()).toEqual(before);
    expect(h.journal()).toHaveLength(journaled);
  });
});
