import { GatewayError } from '../errors/index.js';
import { isBalStatus, isBalType, type Bal } from './bal.js';
import { METADATA_TEXT_FIELDS } from './bal-metadata.js';

/**
 * The Redis hash layout of a BAL (`<prefix>bal:<address>`): one field per property of `Bal`, absent
 * optional properties are absent fields; `listeRouge` is '1' or '0'. Kept apart from the registry so the layout is in one place.
 */

const OPTIONAL_FIELDS = ['suspendedAt', 'deletedAt', 'statusReason', ...METADATA_TEXT_FIELDS] as const;

/** Turns an HGETALL reply into a Bal; null for an empty reply (no such key). */
export function decodeBal(hash: Record<string, string>): Bal | null {
  const { address, type, owner, status, createdAt, updatedAt } = hash;
  if (address === undefined) return null;
  if (
    type === undefined ||
    !isBalType(type) ||
    status === undefined ||
    !isBalStatus(status) ||
    owner === undefined ||
    createdAt === undefined ||
    updatedAt === undefined
  ) {
    // Only our scripts write these hashes; a broken one is a bug or a manual edit, not bad input.
    throw new GatewayError('INTERNAL', `registry record of ${address} is corrupt`, { address });
  }
  // listeRouge is '1' or '0'; records written before it existed are not red-listed.
  const listeRouge = hash.listeRouge === '1';
  const bal: { -readonly [K in keyof Bal]: Bal[K] } = {
    address,
    type,
    owner,
    status,
    createdAt,
    updatedAt,
    listeRouge,
  };
  for (const field of OPTIONAL_FIELDS) {
    const value = hash[field];
    if (value !== undefined) bal[field] = value;
  }
  return bal;
}

/** Turns a flat [field, value, ...] array (what a Lua HGETALL returns) into a record. */
export function pairsToRecord(flat: readonly unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    out[String(flat[i])] = String(flat[i + 1]);
  }
  return out;
}
