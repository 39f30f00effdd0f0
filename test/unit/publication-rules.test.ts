import { describe, expect, it } from 'vitest';
import { ConfigSchema } from '../../src/config/index.js';
import {
  backoffMs,
  desiredFor,
  fhirPathString,
  fhirRequest,
  listedAfterFailure,
  nextStep,
  reachedState,
  type Desired,
  type FhirSettings,
  type Listed,
  type MailboxEntry,
  type UnpublishHold,
} from '../../src/publication/index.js';
import { parseMetadataPatch, type Bal } from '../../src/registry/index.js';
import { bal, FINESS, OWNER } from '../helpers/rights-fixtures.js';

const holds = (...h: UnpublishHold[]) => new Set(h);

describe('where a mailbox should be', () => {
  it.each<[string, Bal | null, UnpublishHold[], string]>([
    ['active', bal('PER'), [], 'published'],
    ['red-listed', bal('PER', { listeRouge: true }), [], 'unpublished:red-list'],
    ['suspended', bal('PER', { status: 'suspended' }), [], 'unpublished:suspended'],
    ['deleted', bal('PER', { status: 'deleted' }), [], 'unpublished:deleted'],
    ['gone from the registry', null, [], 'unpublished:deleted'],
    ['inactive', bal('ORG'), ['inactive'], 'unpublished:inactive'],
    ['held by the operator', bal('ORG'), ['operator'], 'unpublished:operator'],
    ['held for both', bal('ORG'), ['inactive', 'operator'], 'unpublished:operator'],
    ['inactive and red-listed', bal('APP', { listeRouge: true }), ['inactive'], 'unpublished:red-list'],
    ['inactive and suspended', bal('CAB', { status: 'suspended' }), ['inactive'], 'unpublished:suspended'],
    [
      'suspended and red-listed',
      bal('PER', { status: 'suspended', listeRouge: true }),
      [],
      'unpublished:suspended',
    ],
  ])('%s → %s', (_name, b, h, expected) => {
    const d = desiredFor(b, holds(...h));
    expect(d.target === 'published' ? 'published' : `unpublished:${d.reason}`).toBe(expected);
  });

  it('publishes the metadata of the mailbox, not its red-list flag', () => {
    const d = desiredFor(
      bal('ORG', { description: 'Accueil', service: 'Urgences', listeRouge: false }),
      holds(),
    );
    expect(d).toEqual({
      target: 'published',
      entry: {
        address: 'org@op.mssante.test',
        type: 'ORG',
        owner: FINESS,
        description: 'Accueil',
        service: 'Urgences',
      },
    });
  });

  it('shows an inactivity unpublication apart from the others', () => {
    expect(reachedState({ target: 'unpublished', reason: 'inactive' })).toBe('unpublished-inactive');
    expect(reachedState({ target: 'unpublished', reason: 'red-list' })).toBe('unpublished');
    expect(reachedState(desiredFor(bal('PER'), holds()))).toBe('published');
  });
});

describe('what to ask of the directory', () => {
  const entry: MailboxEntry = { address: 'per@op.mssante.test', type: 'PER', owner: OWNER };
  const publish: Desired = { target: 'published', entry };
  const unpublish: Desired = { target: 'unpublished', reason: 'suspended' };
  it.each<[string, Desired, Listed, MailboxEntry | undefined, string]>([
    ['new mailbox', publish, 'no', undefined, 'insert'],
    ['unsure whether listed', publish, 'unknown', entry, 'insert'],
    ['listed, same entry', publish, 'yes', entry, 'settle'],
    ['listed, metadata changed', publish, 'yes', { ...entry, description: 'old' }, 'replace'],
    ['unpublish a listed one', unpublish, 'yes', entry, 'delete'],
    ['unpublish an uncertain one', unpublish, 'unknown', undefined, 'delete'],
    ['unpublish one never listed', unpublish, 'no', undefined, 'settle'],
  ])('%s → %s', (_name, desired, listed, published, expected) => {
    const step = nextStep(desired, listed, published);
    expect(step.kind === 'call' ? step.operation : step.kind).toBe(expected);
  });
});

describe('what the directory may hold after a failed call', () => {
  it.each<[string, Parameters<typeof listedAfterFailure>, Listed]>([
    ['refused insert', ['insert', 'no', { temporary: false, sent: true }], 'no'],
    ['unanswered insert', ['insert', 'no', { temporary: true, sent: true }], 'unknown'],
    ['insert never sent', ['insert', 'no', { temporary: true, sent: false }], 'no'],
    ['unanswered insert of a listed one', ['insert', 'yes', { temporary: true, sent: true }], 'yes'],
    ['unanswered delete', ['delete', 'yes', { temporary: true, sent: true }], 'unknown'],
    ['unanswered replace', ['replace', 'yes', { temporary: true, sent: true }], 'yes'],
    ['refused delete', ['delete', 'yes', { temporary: false, sent: true }], 'yes'],
  ])('%s → %s', (_name, args, expected) => {
    expect(listedAfterFailure(...args)).toBe(expected);
  });
});

describe('retry backoff', () => {
  const settings = { retryInitialSeconds: 30, retryMaxSeconds: 3600 };
  it.each([
    [1, 30_000],
    [2, 60_000],
    [3, 120_000],
    [8, 3_600_000],
    [20, 3_600_000],
  ])('attempt %i waits %i ms without jitter', (attempts, ms) => {
    expect(backoffMs(settings, attempts, () => 0.5)).toBe(ms);
  });

  it('spreads retries by ±20 %', () => {
    expect(backoffMs(settings, 1, () => 0)).toBe(24_000);
    expect(backoffMs(settings, 1, () => 1)).toBe(36_000);
  });
});

describe('the FHIR PATCH requests', () => {
  const settings: FhirSettings = {
    ...ConfigSchema.parse({}).publication.fhir,
    baseUrl: 'https://annuaire.example/fhir/',
  };
  const entry: MailboxEntry = {
    address: "o'neil@op.mssante.test",
    type: 'PER',
    owner: OWNER,
    description: 'x',
  };
  const mailbox = `Practitioner.telecom.where(system = 'email' and value = 'o\\'neil@op.mssante.test')`;

  it('escapes FHIRPath string literals', () => {
    expect(fhirPathString("a'b\\c")).toBe("'a\\'b\\\\c'");
  });

  it('insert: one atomic patch, delete-if-found then add, conditional on the owner id', () => {
    const req = fhirRequest(settings, 'insert', entry);
    expect(req.method).toBe('PATCH');
    expect(req.url).toBe(
      `https://annuaire.example/fhir/Practitioner?identifier=${encodeURIComponent(`urn:oid:1.2.250.1.71.4.2.1|${OWNER}`)}`,
    );
    expect(
      req.body.parameter.map((p) => p.part.map((part) => part.valueCode ?? part.valueString ?? part.name)),
    ).toEqual([
      ['delete', mailbox],
      ['add', 'Practitioner', 'telecom', 'value'],
    ]);
  });

  it('replace and delete select our telecom only', () => {
    expect(fhirRequest(settings, 'replace', entry).body.parameter[0]?.part.slice(0, 2)).toEqual([
      { name: 'type', valueCode: 'replace' },
      { name: 'path', valueString: mailbox },
    ]);
    const del = fhirRequest(settings, 'delete', {
      address: 'lab@op.mssante.test',
      type: 'APP',
      owner: FINESS,
    });
    expect(del.url).toContain('/Organization?identifier=urn%3Aoid%3A1.2.250.1.71.4.2.2%7C1750712184');
    expect(del.body).toEqual({
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'delete' },
            {
              name: 'path',
              valueString: "Organization.telecom.where(system = 'email' and value = 'lab@op.mssante.test')",
            },
          ],
        },
      ],
    });
  });
});

describe('mailbox metadata', () => {
  it('trims text, removes empty text, keeps the red-list flag', () => {
    expect(
      parseMetadataPatch('ORG', {
        listeRouge: true,
        description: '  Accueil ',
        service: '',
        responsible: null,
      }),
    ).toEqual({ listeRouge: true, set: { description: 'Accueil' }, remove: ['service', 'responsible'] });
  });

  it.each<[string, Parameters<typeof parseMetadataPatch>[1], RegExp]>([
    ['responsible on a PER mailbox', { responsible: 'Dr X' }, /not published for PER mailboxes/],
    ['a line break', { description: 'a\nb' }, /one line of text/],
    ['a long service', { service: 'x'.repeat(201) }, /201 characters; the maximum is 200/],
  ])('refuses %s', (_name, patch, message) => {
    expect(() => parseMetadataPatch('PER', patch)).toThrow(message);
    try {
      parseMetadataPatch('PER', patch);
    } catch (err) {
      expect(err).toMatchObject({ code: 'BAL_INVALID_METADATA' });
    }
  });
});
