import { normalisePersonId } from '../shared/index.js';

/**
 * A person's national id (MSSANTE.md "Client access"): `8` + the 11-digit RPPS number, or `0` + the
 * 9-character ADELI number. One rule for the whole gateway (shared/person-id.ts, which the registry
 * uses too): a token or a certificate names a person exactly as a PER mailbox records its owner and a
 * grant its delegate.
 * Returns the normalised id, or undefined when `value` is not one.
 */
export function parseNationalId(value: unknown): string | undefined {
  if (typeof value !== 'string' || value.length > 32) return undefined;
  return normalisePersonId(value) ?? undefined;
}
