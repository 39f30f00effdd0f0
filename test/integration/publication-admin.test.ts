import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildAdminApi } from '../../src/admin/index.js';
import { createLogger } from '../../src/observability/index.js';
import type { ExtractionView } from '../../src/publication/index.js';
import { uniqueAddress, useAdminHarness } from '../helpers/admin-harness.js';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { balPath, call, expectProblem } from '../helpers/admin-http.js';
import { ACTOR, startPublicationHarness, type PublicationHarness } from '../helpers/publication-harness.js';

const PERSON_SYSTEM = 'urn:oid:1.2.250.1.71.4.2.1';
const STRUCTURE_SYSTEM = 'urn:oid:1.2.250.1.71.4.2.2';
const PERSON = '810004444444';
const FINESS = '1750000042';

let h: PublicationHarness;
let app: FastifyInstance;
let api: { url: string };

beforeAll(async () => {
  h = await startPublicationHarness();
  h.fhir.put({
    resourceType: 'Practitioner',
    id: 'p1',
    identifier: [{ system: PERSON_SYSTEM, value: PERSON }],
  });
  h.fhir.put({
    resourceType: 'Organization',
    id: 'o1',
    identifier: [{ system: STRUCTURE_SYSTEM, value: FINESS }],
  });
  app = buildAdminApi({
    registry: h.registry,
    logger: createLogger({ level: 'silent' }),
    publication: h.publication,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  api = { url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
});

afterAll(async () => {
  await app?.close();
  await h?.close();
});

/** A plain Set plays the extraction mirror. */
function extraction(addresses: Iterable<string>): ExtractionView {
  const set = new Set(addresses);
  return { has: (list) => Promise.resolve(list.map((a) => set.has(a))) };
}

describe('admin API: metadata and publication state', () => {
  it('creates a red-listed mailbox, shows its state, then publishes it when taken off the red list', async () => {
    const address = uniqueAddress('api.red');
    const created = await call(api, 'POST', '/v1/bals', {
      json: { address, type: 'PER', owner: PERSON, listeRouge: true, description: 'Consultations' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ listeRouge: true, description: 'Consultations' });
    await h.settled(address);

    const shown = await call(api, 'GET', balPath(address));
    expect(shown.body).toMatchObject({
      address,
      listeRouge: true,
      publication: { state: 'unpublished', reason: 'red-list', listed: 'no', holds: [] },
    });

    const patched = await call(api, 'PATCH', balPath(address), {
      json: { listeRouge: false, description: null },
    });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ listeRouge: false });
    expect(patched.body).not.toHaveProperty('description');
    await h.settled(address);
    expect((await call(api, 'GET', balPath(address))).body).toMatchObject({
      publication: { state: 'published', lastCall: { operation: 'insert', outcome: 'ok', status: 200 } },
    });
    expect(h.journal().filter((e) => e.event === 'registry.bal.updated' && e.address === address)).toEqual([
      expect.objectContaining({
        set: { listeRouge: false },
        removed: ['description'],
        actor: expect.any(Object) as unknown,
      }),
    ]);
  });

  it('refuses bad metadata changes with problem details, changing nothing', async () => {
    const address = uniqueAddress('api.refusals');
    await call(api, 'POST', '/v1/bals', { json: { address, type: 'PER', owner: PERSON } });
    const before = await h.registry.get(address);

    expect(
      expectProblem(
        await call(api, 'PATCH', balPath(address), { json: { type: 'ORG' } }),
        400,
        'BAL_FIELD_IMMUTABLE',
      ),
    ).toMatch(/^type of a mailbox never changes/);
    expect(
      expectProblem(
        await call(api, 'PATCH', balPath(address), { json: { address: 'other@op.mssante.test' } }),
        400,
        'BAL_FIELD_IMMUTABLE',
      ),
    ).toMatch(/^address of a mailbox never changes/);
    expect(
      expectProblem(await call(api, 'PATCH', balPath(address), { json: {} }), 400, 'REQUEST_INVALID'),
    ).toMatch(/give at least one of listeRouge, description, service, responsible/);
    expect(
      expectProblem(
        await call(api, 'PATCH', balPath(address), { json: { listeRouge: 'yes' } }),
        400,
        'REQUEST_INVALID',
      ),
    ).toMatch(/body\.listeRouge/);
    expect(
      expectProblem(
        await call(api, 'PATCH', balPath(address), { json: { colour: 'red' } }),
        400,
        'REQUEST_INVALID',
      ),
    ).toMatch(/body\.colour is not a known field/);
    expect(
      expectProblem(
        await call(api, 'PATCH', balPath(address), { json: { responsible: 'Dr X' } }),
        400,
        'BAL_INVALID_METADATA',
      ),
    ).toMatch(/not published for PER mailboxes/);
    expectProblem(
      await call(api, 'PATCH', balPath(uniqueAddress('nobody')), { json: { description: 'x' } }),
      404,
      'BAL_NOT_FOUND',
    );
    expect(await h.registry.get(address)).toEqual(before);

    await call(api, 'DELETE', balPath(address));
    expect(
      expectProblem(
        await call(api, 'PATCH', balPath(address), { json: { description: 'x' } }),
        409,
        'BAL_INVALID_TRANSITION',
      ),
    ).toMatch(/is deleted/);
  });
});

describe('mssgw bal create/update/show with publication', () => {
  it('prints the publication state, its reason and the last directory answer', async () => {
    const address = uniqueAddress('cli.pub');
    const created = await mssgw([
      '--api',
      api.url,
      'bal',
      'create',
      address,
      '--type',
      'ORG',
      '--owner',
      FINESS,
      '--description',
      'Secrétariat',
      '--responsible',
      'Mme Petit',
    ]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toMatch(
      /\nlisteRouge: +false\ndescription: +Secrétariat\nresponsible: +Mme Petit\n$/,
    );
    await h.settled(address);

    const shown = await mssgw(['--api', api.url, 'bal', 'show', address]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      /\npublication:\n {2}state: +published\n {2}since: +\d{4}-\d\d-\d\dT.*\n {2}inDirectory: +yes\n {2}lastCall: +insert ok, HTTP 200, \d{4}-/,
    );

    const updated = await mssgw(['--api', api.url, 'bal', 'update', address, '--liste-rouge']);
    expect(updated).toMatchObject({ code: 0, stderr: '' });
    expect(updated.stdout).toMatch(new RegExp(`^updated ${address}\\n`));
    await h.settled(address);
    const after = await mssgw(['--api', api.url, 'bal', 'show', address]);
    expect(after.stdout).toMatch(/\n {2}state: +unpublished\n.*\n {2}reason: +red-list\n/);
    expect(after.stdout).toMatch(/lastCall: +delete ok, HTTP 200/);

    const json = await mssgw(['--api', api.url, 'bal', 'show', address, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ address, publication: { state: 'unpublished' } });
  });

  it('shows a refusal of the directory with its reason', async () => {
    const address = uniqueAddress('cli.refused');
    await mssgw(['--api', api.url, 'bal', 'create', address, '--type', 'PER', '--owner', '810009999999']);
    await h.settled(address);
    const shown = await mssgw(['--api', api.url, 'bal', 'show', address]);
    expect(shown.stdout).toMatch(/\n {2}state: +failed\n/);
    expect(shown.stdout).toMatch(/\n {2}target: +published\n/);
    expect(shown.stdout).toMatch(
      /\n {2}lastError: +the national directory has no Practitioner .* \(PUBLICATION_NOT_FOUND, /,
    );
    expect(shown.stdout).toMatch(/lastCall: +insert not_found, HTTP 404/);
  });

  it('refuses an update with nothing to change (usage error) and reports API refusals', async () => {
    const address = uniqueAddress('cli.usage');
    await mssgw(['--api', api.url, 'bal', 'create', address, '--type', 'PER', '--owner', PERSON]);
    const nothing = await mssgw(['--api', api.url, 'bal', 'update', address]);
    expect(nothing.code).toBe(2);
    expect(nothing.stderr).toMatch(/nothing to change/);
    const refused = await mssgw(['--api', api.url, 'bal', 'update', address, '--responsible', 'X']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/\(BAL_INVALID_METADATA\)/);
  });
});

describe('drift between our state and the national extraction', () => {
  it('reports published mailboxes missing from the extraction and unpublished ones still in it', async () => {
    const fresh = await startPublicationHarness({ fhir: h.fhir });
    try {
      const listed = uniqueAddress('listed');
      const missing = uniqueAddress('missing');
      const lingering = uniqueAddress('lingering');
      const app = uniqueAddress('app');
      const failed = uniqueAddress('failed');
      await fresh.registry.create({ address: listed, type: 'PER', owner: PERSON }, ACTOR);
      await fresh.registry.create({ address: missing, type: 'ORG', owner: FINESS }, ACTOR);
      await fresh.registry.create(
        { address: lingering, type: 'PER', owner: PERSON, listeRouge: true },
        ACTOR,
      );
      await fresh.registry.create({ address: app, type: 'APP', owner: FINESS }, ACTOR);
      await fresh.registry.create({ address: failed, type: 'PER', owner: '810001111111' }, ACTOR);
      for (const a of [listed, missing, lingering, app, failed]) await fresh.settled(a);

      const report = await fresh.publication.reconcile(extraction([listed, lingering, failed]));
      expect(report).toMatchObject({
        compared: { published: 2, unpublished: 1 },
        publishedMissing: { count: 1, addresses: [missing] },
        unpublishedPresent: { count: 1, addresses: [lingering] },
        skipped: { recent: 0, typeNotExtracted: 1 },
      });
      expect(await fresh.publication.lastDrift()).toEqual(report);
      const gauge = await fresh.metrics.registry.getSingleMetricAsString('mssgw_publication_drift_bals');
      expect(gauge).toMatch(/mssgw_publication_drift_bals\{kind="published_missing"\} 1/);
      expect(gauge).toMatch(/mssgw_publication_drift_bals\{kind="unpublished_present"\} 1/);
      expect(fresh.journal().filter((e) => e.event === 'publication.drift')).toEqual([
        expect.objectContaining({ publishedMissing: 1, unpublishedPresent: 1 }),
      ]);

      // Changes made after the extraction are not judged against it.
      const asOf = new Date(Date.now() - 3_600_000);
      const later = await fresh.publication.reconcile(extraction([]), asOf);
      expect(later).toMatchObject({ compared: { published: 0, unpublished: 0 }, skipped: { recent: 3 } });
    } finally {
      await fresh.close();
    }
  });

  it('mssgw directory drift prints the last report, or says there is none yet', async () => {
    const none = await mssgw(['--api', api.url, 'directory', 'drift']);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/no drift report yet.*\(DRIFT_REPORT_MISSING\)/);

    const address = uniqueAddress('drift.cli');
    await h.registry.create({ address, type: 'PER', owner: PERSON }, ACTOR);
    await h.settled(address);
    await h.publication.reconcile(extraction([]));
    const shown = await mssgw(['--api', api.url, 'directory', 'drift']);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/^drift report of \d{4}-/);
    expect(shown.stdout).toMatch(/\npublished but missing from the extraction: [1-9]\d*\n/);
    expect(shown.stdout).toContain(`  ${address}\n`);
    const json = await mssgw(['--api', api.url, 'directory', 'drift', '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({
      publishedMissing: { addresses: expect.arrayContaining([address]) as unknown },
    });
  });
});

describe('an admin API without publication', () => {
  const start = useAdminHarness();
  it('has no drift report to give and no publication field', async () => {
    const plain = await start();
    expectProblem(await call(plain, 'GET', '/v1/directory/drift'), 409, 'PUBLICATION_DISABLED');
    const address = uniqueAddress(`plain-${randomUUID().slice(0, 4)}`);
    await call(plain, 'POST', '/v1/bals', { json: { address, type: 'PER', owner: PERSON } });
    expect((await call(plain, 'GET', balPath(address))).body).not.toHaveProperty('publication');
  });
});
