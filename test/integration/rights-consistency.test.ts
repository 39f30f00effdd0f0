import { describe, expect, it } from 'vitest';
import type { AccessibleBal, GrantView } from '../../src/registry/index.js';
import { useAdminHarness } from '../helpers/admin-harness.js';
import { balPath, call } from '../helpers/admin-http.js';
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

const APP_DN = 'CN=lps.hopital.test,O=Hopital Exemple,C=FR';

const start = useAdminHarness();

/** Deterministic pseudo-random sequence (a failing interleaving can be replayed). */
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

describe('the reverse indexes stay consistent', () => {
  it('under concurrent grants and revocations over HTTP', async () => {
    const h = await start();
    const bals = [
      await createBal(h, 'ORG', FINESS),
      await createBal(h, 'ORG', FINESS),
      await createBal(h, 'CAB', FINESS),
      await createBal(h, 'PER', RPPS_B),
    ];
    const people = [RPPS_A, ADELI_C, '810001111111'];
    const random = lcg(42);
    const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
    const requests = Array.from({ length: 240 }, () => {
      const address = pick(bals);
      const person = pick(people);
      if (random() < 0.45) return call(h, 'DELETE', rightsPath(address, `?person=${person}`));
      const json =
        address === bals[3] || random() < 0.5
          ? { right: 'delegate', person, scopes: ['read'] }
          : { right: 'member', person };
      return call(h, 'POST', rightsPath(address), { json });
    });
    const answers = await Promise.all(requests);
    expect(answers.every((a) => [200, 201, 404].includes(a.status))).toBe(true);

    const pairs = await expectRightsIndexConsistent(h);
    for (const person of people) {
      const listed = (await call(h, 'GET', `/v1/persons/${person}/bals`)).body as { items: AccessibleBal[] };
      const granted = pairs.filter((p) => p.endsWith(` person:${person}`)).map((p) => p.split(' ')[0]);
      expect(listed.items.map((b) => b.bal)).toEqual(granted.sort());
    }
  });

  it('when a mailbox is deleted while grants on it are in flight', async () => {
    const h = await start();
    const org = await createBal(h, 'ORG', FINESS);
    const people = Array.from({ length: 40 }, (_, i) => `8100000000${String(i).padStart(2, '0')}`);
    const grant = (person: string) => call(h, 'POST', rightsPath(org), { json: { right: 'member', person } });
    // Ten land first for sure; thirty more race the deletion.
    const settled = await Promise.all(people.slice(0, 10).map(grant));
    const racing = people.slice(10).map(grant);
    const deletion = call(h, 'DELETE', balPath(org));
    const answers = [...settled, ...(await Promise.all(racing)), await deletion];
    expect(answers.at(-1)?.status).toBe(200);
    // Each grant either landed before the deletion (then the deletion dropped it) or was refused.
    expect(answers.slice(0, -1).every((a) => a.status === 201 || a.status === 409)).toBe(true);
    expect(await expectRightsIndexConsistent(h)).toEqual([]);
    const granted = answers.slice(0, -1).filter((a) => a.status === 201).length;
    const dropped = h.journal().filter((e) => e.event === 'registry.right.revoked');
    expect(dropped).toHaveLength(granted);
    expect(dropped.every((e) => e.reason === 'mailbox deleted' && e.address === org)).toBe(true);
  });
});

describe('deleting a mailbox', () => {
  it('drops its grants, their index entries and its owner entry, and refuses new grants', async () => {
    const h = await start();
    const per = await createBal(h, 'PER', RPPS_A);
    const app = await createBal(h, 'APP', FINESS);
    const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
    await call(h, 'POST', rightsPath(per), {
      json: { right: 'delegate', person: RPPS_B, scopes: ['read'], expiresAt },
    });
    await call(h, 'POST', rightsPath(app), { json: { right: 'application', certificateDn: APP_DN } });
    expect((await h.registry.balsForPerson(RPPS_A)).map((b) => b.right)).toEqual(['owner']);

    for (const address of [per, app]) expect((await call(h, 'DELETE', balPath(address))).status).toBe(200);

    expect(await expectRightsIndexConsistent(h)).toEqual([]);
    const keys = Object.keys(await h.keySpace()).map((k) => k.slice(h.prefix.length));
    expect(
      keys.filter((k) => /^(rights|person-|certificate-)/.test(k) || k === 'bals:rights-expiry'),
    ).toEqual([]);
    expect(await h.registry.balsForPerson(RPPS_A)).toEqual([]);
    expect(await h.registry.balsForPerson(RPPS_B)).toEqual([]);
    expect(await h.registry.balsForCertificate(APP_DN)).toEqual([]);
    expect((await call(h, 'GET', rightsPath(per))).body).toEqual({ items: [] });
    const refused = await call(h, 'POST', rightsPath(per), {
      json: { right: 'delegate', person: RPPS_B, scopes: ['read'] },
    });
    expect(refused.status).toBe(409);
  });
});

describe('purging expired grants', () => {
  it('removes exactly the grants expired at the given instant, journaling each', async () => {
    const clock = new SettableClock('2026-03-01T12:00:00Z');
    const h = await start({ clock });
    const per = await createBal(h, 'PER', RPPS_A);
    const org = await createBal(h, 'ORG', FINESS);
    const t1 = '2026-03-05T00:00:00.000Z';
    const t2 = '2026-03-09T00:00:00.000Z';
    await call(h, 'POST', rightsPath(per), {
      json: { right: 'delegate', person: RPPS_B, scopes: ['read'], expiresAt: t1 },
    });
    await call(h, 'POST', rightsPath(org), { json: { right: 'member', person: RPPS_B, expiresAt: t1 } });
    await call(h, 'POST', rightsPath(org), { json: { right: 'member', person: ADELI_C, expiresAt: t2 } });
    await call(h, 'POST', rightsPath(org), { json: { right: 'member', person: RPPS_A } });
    // Renewed before the purge: the earlier expiry no longer applies.
    await call(h, 'POST', rightsPath(org), { json: { right: 'member', person: RPPS_B, expiresAt: t2 } });

    expect(await h.registry.purgeExpiredGrants(new Date(Date.parse(t1) - 1))).toEqual([]);
    const purged = await h.registry.purgeExpiredGrants(new Date(t1));
    expect(purged.map((g) => [g.address, g.right, g.subject, g.expired])).toEqual([
      [per, 'delegate', { kind: 'person', nationalId: RPPS_B }, true],
    ]);
    expect(await h.registry.purgeExpiredGrants(new Date(t1))).toEqual([]);
    const atT2 = await h.registry.purgeExpiredGrants(new Date(t2));
    expect(atT2.map((g) => (g.subject.kind === 'person' ? g.subject.nationalId : '')).sort()).toEqual(
      [ADELI_C, RPPS_B].sort(),
    );

    const left = (await call(h, 'GET', rightsPath(org))).body as { items: GrantView[] };
    expect(left.items.map((g) => g.subject)).toEqual([{ kind: 'person', nationalId: RPPS_A }]);
    expect(await expectRightsIndexConsistent(h)).toEqual([`${org} person:${RPPS_A}`]);
    const expired = h.journal().filter((e) => e.event === 'registry.right.expired');
    expect(expired.map((e) => [e.address, e.expiresAt])).toEqual([
      [per, t1],
      [org, t2],
      [org, t2],
    ]);
    expect(expired[0]?.actor).toEqual({ kind: 'system', id: 'rights-expiry' });
  });
});
