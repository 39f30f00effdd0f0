import type { BalType } from '../registry/index.js';
import type { MailboxEntry } from './mailbox-entry.js';
import type { DirectoryOperation } from './publication-state.js';

/**
 * The requests of the agency's FHIR write interface (MSSANTE.md "Publication (write)": a draft, so
 * every URL and system below is configuration, `publication.fhir.*`). An MSSanté mailbox is a
 * `telecom` of the Practitioner (PER) or Organization (ORG, APP, CAB) of its owner (MSSANTE.md
 * "FHIR read API"), carrying the `as-ext-mailbox-mss-metadata` extension. Each change is one
 * conditional FHIRPath Patch (FHIR R4 http.html#patch, fhirpatch.html), found by identifier:
 *
 *   PATCH {baseUrl}/Practitioner?identifier=urn:oid:1.2.250.1.71.4.2.1|810001234567
 *   Content-Type: application/fhir+json
 *   { "resourceType": "Parameters", "parameter": [ { "name": "operation", "part": [...] } ] }
 *
 * Answers: 200 applied; 404 no resource has the identifier; 412 several have (conditional
 * interactions, http.html#cond-update); 422 the patch could not apply. The operations, with
 * MAILBOX = `telecom.where(system = 'email' and value = '<address>')`:
 *
 *   insert   delete `<Resource>.MAILBOX` (a no-op when absent: "delete ... (if found)"), then
 *            add `telecom` = the ContactPoint to `<Resource>`. One atomic patch, so an insert
 *            repeated after an unanswered attempt never leaves two copies.
 *   replace  replace `<Resource>.MAILBOX` with the ContactPoint; 422 when there is none.
 *   delete   delete `<Resource>.MAILBOX`.
 *
 * The ContactPoint: system `email`, value the address, the fr-core email-type extension (MSSANTE)
 * and the metadata extension with `type` (TRE-R257 code), `description`, `service`,
 * `responsible` when given, and `listeRouge` false (a red-listed mailbox is never sent).
 */
export interface FhirSettings {
  /** `https://…` base of the FHIR write API, no trailing slash needed. */
  readonly baseUrl: string;
  readonly personResource: string;
  readonly personIdentifierSystem: string;
  readonly structureResource: string;
  readonly structureIdentifierSystem: string;
  readonly metadataExtensionUrl: string;
  readonly emailTypeExtensionUrl: string;
  readonly emailTypeSystem: string;
  readonly balTypeSystem: string;
}

export interface FhirRequest {
  readonly method: 'PATCH';
  /** Absolute URL, query included. */
  readonly url: string;
  readonly body: FhirParameters;
  /** Resource type and identifier (`system|value`) the request is conditional on. */
  readonly resource: string;
  readonly identifier: string;
}

export interface FhirParameters {
  readonly resourceType: 'Parameters';
  readonly parameter: ReadonlyArray<{ readonly name: 'operation'; readonly part: readonly FhirPart[] }>;
}

export type FhirPart = { readonly name: string } & Readonly<Record<string, unknown>>;

/** The request of one operation; a delete needs only the address, type and owner of `subject`. */
export function fhirRequest(
  settings: FhirSettings,
  operation: DirectoryOperation,
  subject: MailboxEntry,
): FhirRequest {
  const { resource, system } = resourceOf(settings, subject.type);
  const identifier = `${system}|${subject.owner}`;
  const base = settings.baseUrl.replace(/\/+$/, '');
  const url = `${base}/${resource}?identifier=${encodeURIComponent(identifier)}`;
  const mailbox = `${resource}.${mailboxPath(subject.address)}`;
  let parts: FhirPart[][];
  switch (operation) {
    case 'insert':
      parts = [
        [code('delete'), path(mailbox)],
        [
          code('add'),
          path(resource),
          { name: 'name', valueString: 'telecom' },
          { name: 'value', valueContactPoint: contactPoint(settings, subject) },
        ],
      ];
      break;
    case 'replace':
      parts = [
        [
          code('replace'),
          path(mailbox),
          { name: 'value', valueContactPoint: contactPoint(settings, subject) },
        ],
      ];
      break;
    case 'delete':
      parts = [[code('delete'), path(mailbox)]];
      break;
  }
  return {
    method: 'PATCH',
    url,
    resource,
    identifier,
    body: { resourceType: 'Parameters', parameter: parts.map((part) => ({ name: 'operation', part })) },
  };
}

function resourceOf(settings: FhirSettings, type: BalType): { resource: string; system: string } {
  return type === 'PER'
    ? { resource: settings.personResource, system: settings.personIdentifierSystem }
    : { resource: settings.structureResource, system: settings.structureIdentifierSystem };
}

function code(type: 'add' | 'delete' | 'replace'): FhirPart {
  return { name: 'type', valueCode: type };
}

function path(value: string): FhirPart {
  return { name: 'path', valueString: value };
}

/** The FHIRPath selecting our mailbox among a resource's telecoms. */
export function mailboxPath(address: string): string {
  return `telecom.where(system = 'email' and value = ${fhirPathString(address)})`;
}

/** A FHIRPath string literal (FHIRPath §Literals: `\` escapes, `'` delimits). */
export function fhirPathString(value: string): string {
  return `'${value.replaceAll('\\', '\\\\').replaceAll("'", "\\'")}'`;
}

export function contactPoint(settings: FhirSettings, entry: MailboxEntry): Record<string, unknown> {
  const metadata: Array<Record<string, unknown>> = [
    { url: 'type', valueCodeableConcept: { coding: [{ system: settings.balTypeSystem, code: entry.type }] } },
  ];
  for (const field of ['description', 'service', 'responsible'] as const) {
    const value = entry[field];
    if (value !== undefined) metadata.push({ url: field, valueString: value });
  }
  metadata.push({ url: 'listeRouge', valueBoolean: false });
  return {
    extension: [
      {
        url: settings.emailTypeExtensionUrl,
        valueCoding: { system: settings.emailTypeSystem, code: 'MSSANTE' },
      },
      { url: settings.metadataExtensionUrl, extension: metadata },
    ],
    system: 'email',
    value: entry.address,
  };
}
