import { GatewayError } from '../errors/index.js';
import { GRANT_RIGHTS, SCOPES, type Grant, type GrantSubject } from './rights.js';

/**
 * The stored form of a grant: the `Grant` object as JSON, in the `rights:<address>` hash under its
 * subject key. Only our scripts write it; a record that does not decode is a bug or a manual edit.
 */
export function decodeGrant(json: string, address: string): Grant {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    value = undefined;
  }
  if (!isGrant(value)) {
    throw new GatewayError('INTERNAL', `a rights record of ${address} is corrupt`, { address });
  }
  return value;
}

function isGrant(value: unknown): value is Grant {
  if (typeof value !== 'object' || value === null) return false;
  const g = value as Record<string, unknown>;
  return (
    (GRANT_RIGHTS as readonly unknown[]).includes(g.right) &&
    isSubject(g.subject) &&
    Array.isArray(g.scopes) &&
    g.scopes.length > 0 &&
    g.scopes.every((s) => (SCOPES as readonly unknown[]).includes(s)) &&
    (g.expiresAt === undefined || typeof g.expiresAt === 'string') &&
    typeof g.grantedBy === 'string' &&
    typeof g.grantedAt === 'string'
  );
}

function isSubject(value: unknown): value is GrantSubject {
  if (typeof value !== 'object' || value === null) return false;
  const s = value as Record<string, unknown>;
  return (
    (s.kind === 'person' && typeof s.nationalId === 'string') ||
    (s.kind === 'certificate' && typeof s.dn === 'string')
  );
}

/** The subject a hash field (`person:<id>`, `certificate:<canonical dn>`) names; see subjectKey. */
export function subjectFromKey(field: string): GrantSubject {
  if (field.startsWith('person:')) return { kind: 'person', nationalId: field.slice('person:'.length) };
  if (field.startsWith('certificate:'))
    return { kind: 'certificate', dn: field.slice('certificate:'.length) };
  throw new GatewayError('INTERNAL', `unknown subject key in the rights index: ${field}`);
}
