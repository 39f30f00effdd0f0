import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import path from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { systemClock } from '../../src/shared/index.js';
import { ConfigSchema } from '../../src/config/index.js';
import { DirectoryCallError, FhirPublisher } from '../../src/publication/index.js';
import { devTrust } from '../helpers/auth-tls.js';
import { MemoryAuditJournal } from '../../src/observability/index.js';
import { BalRegistry } from '../../src/registry/index.js';
import { storeProvisioner, TEST_DOMAINS, uniqueAddress } from '../helpers/admin-harness.js';
import type { FhirResource } from '../helpers/fhir-server.js';
import { ACTOR, startPublicationHarness, type PublicationHarness } from '../helpers/publication-harness.js';

const PERSON_SYSTEM = 'urn:oid:1.2.250.1.71.4.2.1';
const STRUCTURE_SYSTEM = 'urn:oid:1.2.250.1.71.4.2.2';
const METADATA_URL =
  'https://interop.esante.gouv.fr/ig/fhir/annuaire/StructureDefinition/as-ext-mailbox-mss-metadata';

let h: PublicationHarness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

async function harness(settings: Parameters<typeof startPublicationHarness>[0] = {}) {
  h = await startPublicationHarness(settings);
  return h;
}

/** A fresh national person id (8 + 11 digits) and the Practitioner holding it. */
function practitioner(): { id: string; resource: FhirResource } {
  const id = `8${String(Math.floor(Math.random() * 1e11)).padStart(11, '0')}`;
  return {
    id,
    resource: {
      resourceType: 'Practitioner',
      id: `pr-${randomUUID()}`,
      identifier: [{ system: PERSON_SYSTEM, value: id }],
    },
  };
}

function organization(): { id: string; resource: FhirResource } {
  const id = `1${String(Math.floor(Math.random() * 1e9)).padStart(9, '0')}`;
  return {
    id,
    resource: {
      resourceType: 'Organization',
      id: `org-${randomUUID()}`,
      identifier: [{ system: STRUCTURE_SYSTEM, value: id }],
    },
  };
}

/** The mailbox telecom of a resource on the server, or undefined. */
function telecomOf(t: PublicationHarness, resource: FhirResource, address: string) {
  return t.fhir.resource(resource.resourceType, resource.id)?.telecom?.find((c) => c.value === address);
}

function str(value: unknown): string {
  return typeof value === 'string' || typeof value === 'number' ? String(value) : '-';
}

function calls(t: PublicationHarness, address: string) {
  return t
    .journal()
    .filter((e) => e.event === 'publication.call' && e.address === address)
    .map((e) => `${str(e.operation)} ${str(e.outcome)} ${str(e.status)}`);
}

function stateChanges(t: PublicationHarness, address: string) {
  return t
    .journal()
    .filter((e) => e.event === 'publication.state.changed' && e.address === address)
    .map((e) => `${str(e.from)}>${str(e.to)}`);
}

describe('publication of a new mailbox', () => {
  it('publishes it on its owner resource, over mutual TLS with our certificate, and journals the call', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const address = uniqueAddress('dr.martin');
    await t.registry.create({ address, type: 'PER', owner: id, description: 'Cardiologie' }, ACTOR);

    const state = await t.settled(address);
    expect(state).toMatchObject({ state: 'published', listed: 'yes', attempts: 0 });
    expect(state.lastCall).toMatchObject({ operation: 'insert', outcome: 'ok', status: 200 });
    expect(state.published).toEqual({ address, type: 'PER', owner: id, description: 'Cardiologie' });
    expect(telecomOf(t, resource, address)).toEqual({
      system: 'email',
      value: address,
      extension: [
        {
          url: 'https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-contact-point-email-type',
          valueCoding: {
            system: 'https://mos.esante.gouv.fr/NOS/TRE_R256-TypeMessagerie/FHIR/TRE-R256-TypeMessagerie',
            code: 'MSSANTE',
          },
        },
        {
          url: METADATA_URL,
          extension: [
            {
              url: 'type',
              valueCodeableConcept: {
                coding: [
                  {
                    system: 'https://mos.esante.gouv.fr/NOS/TRE_R257-TypeBAL/FHIR/TRE-R257-TypeBAL',
                    code: 'PER',
                  },
                ],
              },
            },
            { url: 'description', valueString: 'Cardiologie' },
            { url: 'listeRouge', valueBoolean: false },
          ],
        },
      ],
    });

    const [request] = t.fhir.requests;
    expect(request).toMatchObject({
      method: 'PATCH',
      url: `/fhir/Practitioner?identifier=${encodeURIComponent(`${PERSON_SYSTEM}|${id}`)}`,
      contentType: 'application/fhir+json',
      clientAuthorized: true,
      status: 200,
    });
    // The server saw our gateway certificate (development PKI leaf `gateway`).
    expect(request?.clientSubject).toMatch(/OU=499000000000001/);
    expect(request?.clientSubject).toMatch(/CN=localhost/);
    expect(calls(t, address)).toEqual(['insert ok 200']);
    expect(stateChanges(t, address)).toEqual(['pending>published']);
    // The journal names the call, never our key or certificate.
    expect(t.journal().find((e) => e.event === 'publication.call')).toMatchObject({
      address,
      operation: 'insert',
      outcome: 'ok',
      status: 200,
      attempt: 1,
    });
    expect(JSON.stringify(t.journal())).not.toMatch(/BEGIN|PRIVATE/);
    const counter = await t.metrics.registry.getSingleMetricAsString('mssgw_publication_calls_total');
    expect(counter).toMatch(/mssgw_publication_calls_total\{operation="insert",outcome="ok"\} 1/);
    const gauge = await t.metrics.registry.getSingleMetricAsString('mssgw_publication_bals');
    expect(gauge).toMatch(/mssgw_publication_bals\{state="published"\} 1/);
  });

  it('publishes ORG mailboxes on the Organization found by the structure id', async () => {
    const t = await harness();
    const { id, resource } = organization();
    t.fhir.put(resource);
    const address = uniqueAddress('secretariat');
    await t.registry.create(
      { address, type: 'ORG', owner: id, service: 'Radiologie', responsible: 'Mme Durand, cadre' },
      ACTOR,
    );
    expect(await t.settled(address)).toMatchObject({ state: 'published' });
    expect(t.fhir.requests[0]?.url).toBe(
      `/fhir/Organization?identifier=${encodeURIComponent(`${STRUCTURE_SYSTEM}|${id}`)}`,
    );
    expect(JSON.stringify(telecomOf(t, resource, address))).toContain('"valueString":"Mme Durand, cadre"');
  });
});

describe('refusals of the directory are permanent failures with a clear reason', () => {
  it('404: no resource has the owner id — failed, never published, not retried', async () => {
    const t = await harness();
    const { id } = practitioner(); // not on the server
    const address = uniqueAddress('unknown.owner');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);

    const state = await t.settled(address);
    expect(state).toMatchObject({
      state: 'failed',
      target: 'published',
      listed: 'no',
      attempts: 1,
      error: { code: 'PUBLICATION_NOT_FOUND' },
      lastCall: { operation: 'insert', outcome: 'not_found', status: 404 },
    });
    expect(state.error?.message).toMatch(
      /has no Practitioner with identifier urn:oid:1\.2\.250\.1\.71\.4\.2\.1\|8\d{11} \(404\)/,
    );
    expect(state.published).toBeUndefined();
    expect(t.fhir.requests).toHaveLength(1);
    expect(stateChanges(t, address)).toEqual(['pending>failed']);
    expect(t.journal().find((e) => e.event === 'publication.state.changed')).toMatchObject({
      code: 'PUBLICATION_NOT_FOUND',
    });
  });

  it('412: several resources have the owner id — failed, never published', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    t.fhir.put({ ...resource, id: `${resource.id}-twin` });
    const address = uniqueAddress('twin');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);

    const state = await t.settled(address);
    expect(state).toMatchObject({
      state: 'failed',
      listed: 'no',
      error: { code: 'PUBLICATION_AMBIGUOUS' },
      lastCall: { outcome: 'ambiguous', status: 412 },
    });
    expect(t.fhir.requests).toHaveLength(1);
    expect(telecomOf(t, resource, address)).toBeUndefined();
  });
});

describe('temporary failures are retried with backoff', () => {
  it('5xx twice, then success: published after the third attempt, never before', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    t.fhir.failNext(503, 2);
    const address = uniqueAddress('retry');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);

    const state = await t.settled(address);
    expect(state).toMatchObject({
      state: 'published',
      listed: 'yes',
      attempts: 0,
      lastCall: { status: 200 },
    });
    expect(state.error).toBeUndefined();
    expect(calls(t, address)).toEqual(['insert unavailable 503', 'insert unavailable 503', 'insert ok 200']);
    // The state never left pending before the directory said yes.
    expect(stateChanges(t, address)).toEqual(['pending>published']);
    const events = t.journal().map((e) => `${str(e.event)}:${str(e.outcome ?? e.to)}`);
    expect(events.indexOf('publication.state.changed:published')).toBeGreaterThan(
      events.indexOf('publication.call:ok'),
    );
    // One telecom, although the insert was sent three times.
    expect(t.fhir.telecoms('Practitioner', resource.id)).toEqual([address]);
  });

  it('5xx on every attempt: failed after maxAttempts, then a later change publishes it', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    t.fhir.failNext(500, 3);
    const address = uniqueAddress('down');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);

    const failed = await t.settled(address);
    expect(failed).toMatchObject({
      state: 'failed',
      attempts: 3,
      error: { code: 'PUBLICATION_UNAVAILABLE' },
      lastCall: { outcome: 'unavailable', status: 500 },
    });
    // A 500 may hide an applied change: the gateway no longer claims to know.
    expect(failed.listed).toBe('unknown');

    await t.registry.updateMetadata(address, { description: 'Retour du service' }, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published', listed: 'yes' });
    expect(t.fhir.telecoms('Practitioner', resource.id)).toEqual([address]);
  });

  it('a directory that does not answer at all is unavailable, and nothing is claimed', async () => {
    const t = await harness({ settings: { maxAttempts: 2 } });
    await t.fhir.close(); // the port no longer listens
    const { id } = practitioner();
    const address = uniqueAddress('nobody');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);
    const state = await t.settled(address);
    expect(state).toMatchObject({
      state: 'failed',
      listed: 'no',
      error: { code: 'PUBLICATION_UNAVAILABLE' },
    });
    expect(state.lastCall).toMatchObject({ outcome: 'unavailable', detail: 'ECONNREFUSED' });
    expect(state.lastCall?.status).toBeUndefined();
  });
});

describe('red list', () => {
  it('a red-listed mailbox is never sent; leaving the red list publishes it, returning to it unpublishes', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const address = uniqueAddress('discreet');
    const created = await t.registry.create({ address, type: 'PER', owner: id, listeRouge: true }, ACTOR);
    expect(created.listeRouge).toBe(true);

    expect(await t.settled(address)).toMatchObject({
      state: 'unpublished',
      reason: 'red-list',
      listed: 'no',
    });
    expect(t.fhir.requests).toHaveLength(0);

    await t.registry.updateMetadata(address, { listeRouge: false }, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published' });
    expect(telecomOf(t, resource, address)).toBeDefined();

    await t.registry.updateMetadata(address, { listeRouge: true }, ACTOR);
    expect(await t.settled(address)).toMatchObject({
      state: 'unpublished',
      reason: 'red-list',
      listed: 'no',
    });
    expect(telecomOf(t, resource, address)).toBeUndefined();
    expect(calls(t, address)).toEqual(['insert ok 200', 'delete ok 200']);
  });
});

describe('mailbox lifecycle', () => {
  it('suspend unpublishes, resume republishes, delete unpublishes for good', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const address = uniqueAddress('cycle');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published' });

    await t.registry.suspend(address, ACTOR, 'unpaid');
    expect(await t.settled(address)).toMatchObject({ state: 'unpublished', reason: 'suspended' });
    expect(telecomOf(t, resource, address)).toBeUndefined();

    await t.registry.resume(address, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published' });
    expect(telecomOf(t, resource, address)).toBeDefined();

    await t.registry.delete(address, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'unpublished', reason: 'deleted', listed: 'no' });
    expect(telecomOf(t, resource, address)).toBeUndefined();
    expect(calls(t, address)).toEqual(['insert ok 200', 'delete ok 200', 'insert ok 200', 'delete ok 200']);
  });

  it('a metadata change republishes with a replace of the entry', async () => {
    const t = await harness();
    const { id, resource } = organization();
    t.fhir.put(resource);
    const address = uniqueAddress('accueil');
    await t.registry.create({ address, type: 'ORG', owner: id, description: 'Accueil' }, ACTOR);
    const before = await t.settled(address);
    expect(before).toMatchObject({ state: 'published' });

    await t.registry.updateMetadata(
      address,
      { description: 'Accueil des urgences', service: 'Urgences' },
      ACTOR,
    );
    // Still in the directory (with the old metadata) while the replace is on its way.
    expect(await t.publication.state(address)).toMatchObject({ state: 'published', since: before.since });
    const state = await t.settled(address);
    expect(state.since).toBe(before.since);
    expect(state).toMatchObject({ state: 'published', lastCall: { operation: 'replace', outcome: 'ok' } });
    expect(state.published).toMatchObject({ description: 'Accueil des urgences', service: 'Urgences' });
    const metadata = JSON.stringify(telecomOf(t, resource, address));
    expect(metadata).toContain('"valueString":"Accueil des urgences"');
    expect(metadata).toContain('"valueString":"Urgences"');
    expect(t.fhir.telecoms('Organization', resource.id)).toEqual([address]);
    expect(calls(t, address)).toEqual(['insert ok 200', 'replace ok 200']);
  });

  it('a replace that finds no entry (removed on the agency side) falls back to an insert', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const address = uniqueAddress('removed');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published' });
    t.fhir.put(resource); // the agency dropped our telecom

    await t.registry.updateMetadata(address, { description: 'Pédiatrie' }, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published', lastCall: { operation: 'insert' } });
    expect(calls(t, address)).toEqual(['insert ok 200', 'replace entry_missing 422', 'insert ok 200']);
    expect(JSON.stringify(telecomOf(t, resource, address))).toContain('Pédiatrie');
  });

  it('the latest change wins when several arrive together', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const address = uniqueAddress('busy');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);
    await Promise.all([
      t.registry.updateMetadata(address, { description: 'un' }, ACTOR),
      t.registry.updateMetadata(address, { service: 'deux' }, ACTOR),
    ]);
    await t.registry.suspend(address, ACTOR);
    expect(await t.settled(address)).toMatchObject({
      state: 'unpublished',
      reason: 'suspended',
      listed: 'no',
    });
    expect(telecomOf(t, resource, address)).toBeUndefined();
  });
});

describe('unpublication for inactivity (issue #6)', () => {
  it('unpublish(inactive) gives unpublished-inactive; republish publishes again', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const address = uniqueAddress('idle');
    await t.registry.create({ address, type: 'PER', owner: id }, ACTOR);
    expect(await t.settled(address)).toMatchObject({ state: 'published' });

    const pending = await t.publication.unpublish(address, 'inactive');
    expect(pending).toMatchObject({
      state: 'pending',
      target: 'unpublished',
      reason: 'inactive',
      holds: ['inactive'],
    });
    expect(await t.settled(address)).toMatchObject({ state: 'unpublished-inactive', reason: 'inactive' });
    expect(telecomOf(t, resource, address)).toBeUndefined();

    await t.publication.republish(address);
    expect(await t.settled(address)).toMatchObject({ state: 'published', holds: [] });
    expect(telecomOf(t, resource, address)).toBeDefined();
  });

  it('a return of activity does not republish a mailbox kept out for another reason', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    const suspended = uniqueAddress('suspended');
    const red = uniqueAddress('red');
    await t.registry.create({ address: suspended, type: 'PER', owner: id }, ACTOR);
    await t.registry.create({ address: red, type: 'PER', owner: id }, ACTOR);
    await t.settled(suspended);
    await t.settled(red);
    await t.publication.unpublish(suspended, 'inactive');
    await t.publication.unpublish(red, 'inactive');
    await t.settled(suspended);
    await t.settled(red);
    await t.registry.suspend(suspended, ACTOR);
    await t.registry.updateMetadata(red, { listeRouge: true }, ACTOR);
    expect(await t.settled(suspended)).toMatchObject({ state: 'unpublished', reason: 'suspended' });
    expect(await t.settled(red)).toMatchObject({ state: 'unpublished', reason: 'red-list' });

    await t.publication.republish(suspended);
    await t.publication.republish(red);
    expect(await t.settled(suspended)).toMatchObject({
      state: 'unpublished',
      reason: 'suspended',
      holds: [],
    });
    expect(await t.settled(red)).toMatchObject({ state: 'unpublished', reason: 'red-list', holds: [] });
    expect(t.fhir.telecoms('Practitioner', resource.id)).toEqual([]);
  });

  it('refuses an unknown mailbox', async () => {
    const t = await harness();
    await expect(t.publication.unpublish(uniqueAddress('ghost'), 'inactive')).rejects.toMatchObject({
      code: 'BAL_NOT_FOUND',
    });
  });
});

describe('catching up', () => {
  it('queues mailboxes created before publication was enabled', async () => {
    const t = await harness();
    const { id, resource } = practitioner();
    t.fhir.put(resource);
    // Created through a registry without observer: publication was off then.
    const before = new BalRegistry({
      redis: t.redis,
      prefix: t.prefix,
      domains: TEST_DOMAINS,
      clock: systemClock,
      journal: new MemoryAuditJournal(),
      provisioner: storeProvisioner(),
    });
    const address = uniqueAddress('older');
    await before.create({ address, type: 'PER', owner: id }, ACTOR);
    expect(await t.publication.state(address)).toBeNull();

    expect(await t.publication.catchUp()).toBe(1);
    expect(await t.settled(address)).toMatchObject({ state: 'published' });
    expect(await t.publication.catchUp()).toBe(0);
    const [known, unknown] = await t.publication.statesOf([address.toUpperCase(), uniqueAddress('none')]);
    expect(known).toMatchObject({ address, state: 'published', changePending: false });
    expect(unknown).toBeNull();
  });
});

describe('mutual TLS with the directory', () => {
  it('the directory refuses a client without our certificate, and we refuse a directory not from our CAs', async () => {
    const t = await harness();
    const pkiDir = inject('pkiDir');
    const trust = devTrust(pkiDir);
    const { port } = new URL(t.fhir.baseUrl);
    // No client certificate: the handshake is refused before any request is read.
    const anonymous = await new Promise<string>((resolve) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          servername: 'localhost',
          method: 'PATCH',
          path: '/fhir/Practitioner',
          ca: [...trust.ca],
        },
        (res) => resolve(`answered ${res.statusCode ?? 0}`),
      );
      req.on('error', (err: NodeJS.ErrnoException) => resolve(`refused ${err.code ?? err.message}`));
      req.end('{}');
    });
    expect(anonymous).toMatch(/^refused /);

    // Our certificate, but only a foreign authority to check the directory's: never sent.
    const foreign = readFileSync(path.join(pkiDir, 'ca', 'foreign-root.crt'), 'utf8');
    const publisher = new FhirPublisher({
      settings: { ...ConfigSchema.parse({}).publication.fhir, baseUrl: t.fhir.baseUrl },
      tls: () => ({ ...trust, ca: [foreign], crl: [] }),
      tlsProfile: { minVersion: 'TLSv1.2', allowCbc: false },
      timeoutMs: 5000,
    });
    const failure = await publisher
      .insert({ address: uniqueAddress('mitm'), type: 'PER', owner: '810000000001' })
      .then(
        () => undefined,
        (err: unknown) => err,
      );
    expect(failure).toBeInstanceOf(DirectoryCallError);
    expect(failure).toMatchObject({ code: 'PUBLICATION_UNAVAILABLE', sent: false, status: undefined });
    expect((failure as DirectoryCallError).detail).toMatch(/CERT|VERIFY|ISSUER/);
    expect(t.fhir.requests).toHaveLength(0);
  });
});
