import { GatewayError, isGatewayError } from '../errors/index.js';

/**
 * The agency's side of the FHIR write contract (fhir-patch.ts), with no I/O: FHIRPath Patch
 * `Parameters` applied to the telecoms of one resource, all operations or none. Used by the
 * development stand-in of the national directory (dev-directory.ts).
 */
export interface DirectoryResource {
  resourceType: string;
  id: string;
  identifier: Array<{ system: string; value: string }>;
  telecom?: Array<Record<string, unknown>>;
}

/** A patch applied (the telecoms after it), or why not: HTTP status and OperationOutcome issue code. */
export type PatchResult =
  | { readonly ok: true; readonly telecom: Array<Record<string, unknown>> }
  | { readonly ok: false; readonly status: number; readonly code: string; readonly message: string };

/** Thrown inside this file only, to leave the loop; applyFhirPatch returns it as a result. */
const refuse = (status: number, issue: string, message: string): GatewayError =>
  new GatewayError('REQUEST_INVALID', message, { status, issue, refusal: true });

type Part = { name: string } & Record<string, unknown>;

const MAILBOX = /^([A-Za-z]+)\.telecom\.where\(system = 'email' and value = '((?:[^'\\]|\\.)*)'\)$/;

/** The telecoms after the patch, or a refusal (400 invalid, 422 not-found / multiple-matches / business-rule). */
export function applyFhirPatch(resource: DirectoryResource, patch: unknown): PatchResult {
  try {
    return { ok: true, telecom: patched(resource, patch) };
  } catch (err) {
    if (!isGatewayError(err) || err.details['refusal'] !== true) throw err;
    const { status, issue } = err.details as { status: number; issue: string };
    return { ok: false, status, code: issue, message: err.message };
  }
}

function patched(resource: DirectoryResource, patch: unknown): Array<Record<string, unknown>> {
  const body = patch as { resourceType?: unknown; parameter?: Array<{ name?: unknown; part?: Part[] }> };
  if (body?.resourceType !== 'Parameters' || !Array.isArray(body.parameter)) {
    throw refuse(400, 'invalid', 'the body must be a FHIR Parameters resource');
  }
  const telecom = structuredClone(resource.telecom ?? []);
  for (const operation of body.parameter) {
    const parts = Array.isArray(operation.part) ? operation.part : [];
    const get = (name: string) => parts.find((p) => p.name === name);
    const type = get('type')?.valueCode;
    const pathValue = get('path')?.valueString;
    const at = typeof pathValue === 'string' ? pathValue : '';
    const value = get('value')?.valueContactPoint as Record<string, unknown> | undefined;
    switch (type) {
      case 'add':
        if (at !== resource.resourceType || get('name')?.valueString !== 'telecom' || !value) {
          throw refuse(400, 'invalid', `unsupported add at ${at}`);
        }
        telecom.push(value);
        break;
      case 'insert': {
        const index = Number(get('index')?.valueInteger);
        if (at !== `${resource.resourceType}.telecom` || !value || !(index >= 0 && index <= telecom.length)) {
          throw refuse(400, 'invalid', `unsupported insert at ${at}`);
        }
        telecom.splice(index, 0, value);
        break;
      }
      case 'delete':
      case 'replace': {
        const selected = mailboxIndexes(resource.resourceType, at, telecom);
        if (selected.length > 1) throw refuse(422, 'multiple-matches', `${at} selects several`);
        const [index] = selected;
        if (type === 'delete') {
          // FHIRPath Patch: deleting what is absent is no error.
          if (index !== undefined) telecom.splice(index, 1);
          break;
        }
        if (index === undefined) throw refuse(422, 'not-found', `${at} selects nothing`);
        if (!value) throw refuse(400, 'invalid', 'replace without a value');
        // MSSANTE.md "Publication (write)": changing the type or the address is an error.
        const before = telecom[index]!;
        if (value.value !== before.value || mailboxType(value) !== mailboxType(before)) {
          throw refuse(422, 'business-rule', 'the address and type of a mailbox cannot change');
        }
        telecom[index] = value;
        break;
      }
      default:
        throw refuse(400, 'invalid', `unsupported operation ${String(type)}`);
    }
  }
  return telecom;
}

function mailboxIndexes(resourceType: string, at: string, telecom: Array<Record<string, unknown>>): number[] {
  const m = MAILBOX.exec(at);
  if (!m || m[1] !== resourceType) throw refuse(400, 'invalid', `unsupported path ${at}`);
  const address = m[2]!.replace(/\\(.)/g, '$1');
  return telecom.flatMap((c, i) => (c.system === 'email' && c.value === address ? [i] : []));
}

/** The `type` code of the mailbox metadata extension, if any. */
function mailboxType(contact: Record<string, unknown>): string | undefined {
  const extensions = Array.isArray(contact.extension)
    ? (contact.extension as Array<Record<string, unknown>>)
    : [];
  for (const e of extensions) {
    const inner = Array.isArray(e.extension) ? (e.extension as Array<Record<string, unknown>>) : [];
    const type = inner.find((x) => x.url === 'type');
    const concept = type?.valueCodeableConcept as { coding?: Array<{ code?: unknown }> } | undefined;
    const code = concept?.coding?.[0]?.code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}
