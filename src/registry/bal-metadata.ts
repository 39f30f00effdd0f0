import { GatewayError } from '../errors/index.js';
import type { BalType } from './bal.js';

/**
 * What the national directory publishes about a mailbox besides its address and type: the
 * `as-ext-mailbox-mss-metadata` extension (MSSANTE.md "National directory": type, description,
 * responsible, service, listeRouge). Pure validation; the registry stores the result.
 */

export const METADATA_TEXT_FIELDS = ['description', 'service', 'responsible'] as const;
export type MetadataTextField = (typeof METADATA_TEXT_FIELDS)[number];

/** Longest value of each free-text field (the directory gives none; these keep entries readable). */
export const METADATA_MAX_LENGTH: Readonly<Record<MetadataTextField, number>> = {
  description: 500,
  service: 200,
  responsible: 500,
};

export interface BalMetadata {
  /** Red list: the mailbox must never be published in the national directory. */
  readonly listeRouge: boolean;
  /** What the mailbox is for. */
  readonly description?: string;
  /** Service of the organisation the mailbox belongs to. */
  readonly service?: string;
  /** Who runs the mailbox day to day (ORG, APP, CAB; the directory leaves it empty for PER). */
  readonly responsible?: string;
}

/** A change of metadata: absent fields stay, `null` (or an empty string) removes a text field. */
export interface BalMetadataPatch {
  readonly listeRouge?: boolean;
  readonly description?: string | null;
  readonly service?: string | null;
  readonly responsible?: string | null;
}

/** The validated change: text fields to set, text fields to remove, red list flag if given. */
export interface MetadataChange {
  readonly listeRouge?: boolean;
  readonly set: Partial<Record<MetadataTextField, string>>;
  readonly remove: MetadataTextField[];
}

// C0 and C1 controls, DEL and the Unicode line/paragraph separators: a directory entry is one line.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

function invalid(field: string, why: string, value?: unknown): GatewayError {
  return new GatewayError('BAL_INVALID_METADATA', `${field} ${why}`, {
    field,
    ...(value === undefined ? {} : { value }),
  });
}

/**
 * Validates a metadata change for a mailbox of `type` (create or update). Text is trimmed; an
 * empty text removes the field. Throws BAL_INVALID_METADATA saying what to fix.
 */
export function parseMetadataPatch(type: BalType, patch: BalMetadataPatch): MetadataChange {
  const set: Partial<Record<MetadataTextField, string>> = {};
  const remove: MetadataTextField[] = [];
  for (const field of METADATA_TEXT_FIELDS) {
    const raw = patch[field];
    if (raw === undefined) continue;
    if (raw !== null && typeof raw !== 'string') throw invalid(field, 'must be text or null');
    const value = raw === null ? '' : raw.trim();
    if (value === '') {
      remove.push(field);
      continue;
    }
    if (CONTROL.test(value)) throw invalid(field, 'must be one line of text, without control characters');
    const max = METADATA_MAX_LENGTH[field];
    if (value.length > max) {
      throw invalid(field, `has ${value.length} characters; the maximum is ${max}`);
    }
    if (field === 'responsible' && type === 'PER') {
      throw invalid(
        field,
        'is not published for PER mailboxes (the directory leaves it empty: the owner is the person); remove it',
      );
    }
    set[field] = value;
  }
  if (patch.listeRouge !== undefined && typeof patch.listeRouge !== 'boolean') {
    throw invalid('listeRouge', 'must be true or false', patch.listeRouge);
  }
  return { ...(patch.listeRouge === undefined ? {} : { listeRouge: patch.listeRouge }), set, remove };
}

/** The hash fields a change writes and deletes (bal-record.ts layout: listeRouge is '1' or '0'). */
export function metadataFields(change: MetadataChange): { set: Record<string, string>; del: string[] } {
  const set: Record<string, string> = { ...change.set };
  if (change.listeRouge !== undefined) set.listeRouge = change.listeRouge ? '1' : '0';
  return { set, del: [...change.remove] };
}
