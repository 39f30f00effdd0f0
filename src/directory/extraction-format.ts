import { refusal } from './mirror-outcome.js';
import { normalizeAddress } from '../shared/index.js';

/**
 * The line format of `Extraction_Correspondance_MSSante` (MSSANTE.md "National directory"):
 * `|`-separated, one header line, one published BAL per line; the address is the key and may be
 * repeated. Columns are found by header name, never by position, tolerating accents lost in
 * transcoding and the ` structure BAL` suffix of the structure address columns.
 */

/** Fields kept for each address, in the order of their compact encoding. */
export const ENTRY_FIELDS = [
  'type',
  'personIdType',
  'personId',
  'nationalId',
  'structureIdType',
  'structureId',
  'service',
  'civility',
  'lastName',
  'firstName',
  'professionCode',
  'profession',
  'specialtyCode',
  'specialty',
  'dematerialisation',
  'organisation',
  'tradeName',
  'postalCode',
  'city',
  'department',
  'country',
] as const;
export type EntryField = (typeof ENTRY_FIELDS)[number];

/** One published BAL of the national directory, as the extraction lists it. */
export type DirectoryEntry = {
  /** Lower-case address, domain in ASCII (IDNA). */
  readonly address: string;
  /** `PER` (a person) or `ORG` (a structure's service). */
  readonly type: string;
} & { readonly [K in Exclude<EntryField, 'type'>]?: string };

/** Header names (normalised, see headerKey) → field. */
const HEADER_FIELDS: Readonly<Record<string, EntryField | 'address'>> = {
  'type de bal': 'type',
  'adresse bal': 'address',
  'type identifiant pp': 'personIdType',
  'identifiant pp': 'personId',
  'identification nationale pp': 'nationalId',
  'type identifiant structure': 'structureIdType',
  'identification structure': 'structureId',
  'service de rattachement': 'service',
  "civilite d'exercice": 'civility',
  "nom d'exercice": 'lastName',
  "prenom d'exercice": 'firstName',
  'code profession': 'professionCode',
  'libelle profession': 'profession',
  'code savoir-faire': 'specialtyCode',
  'libelle savoir-faire': 'specialty',
  dematerialisation: 'dematerialisation',
  'raison sociale': 'organisation',
  'enseigne commerciale': 'tradeName',
  'code postal': 'postalCode',
  l6ligneacheminement: 'city',
  departement: 'department',
  pays: 'country',
};

/** The mailbox types a line of the extraction may give (its first column). */
export const BAL_TYPES: ReadonlySet<string> = new Set(['PER', 'ORG', 'APP', 'CAB']);

/** Lower case, no accents, single spaces, no ` structure BAL` suffix, no byte-order mark. */
export function headerKey(name: string): string {
  return name
    .replace(/^\uFEFF/, '')
    .normalize('NFD')
    .replace(/[\u0300-\u036f]/g, '')
    .replace(/[’`]/g, "'")
    .toLowerCase()
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/ structure bal$/, '');
}

/** Where each kept field sits in a line. */
export interface ColumnMap {
  readonly columns: number;
  readonly addressIndex: number;
  /** Index in the line of each ENTRY_FIELDS field, or -1 when the extraction lacks it. */
  readonly fieldIndex: readonly number[];
}

export function columnMap(headerLine: string): ColumnMap {
  const names = headerLine.split('|').map(headerKey);
  const position = new Map<string, number>();
  names.forEach((n, i) => {
    const field = HEADER_FIELDS[n];
    if (field && !position.has(field)) position.set(field, i);
  });
  for (const [field, label] of [
    ['type', 'Type de BAL'],
    ['address', 'Adresse BAL'],
  ] as const) {
    if (!position.has(field))
      throw refusal('malformed', `the header line has no "${label}" column (is this the extraction?)`);
  }
  return {
    columns: names.length,
    addressIndex: position.get('address')!,
    fieldIndex: ENTRY_FIELDS.map((f) => position.get(f) ?? -1),
  };
}

/** One usable line: the address and its field values in ENTRY_FIELDS order ('' when empty). */
export interface ExtractionRow {
  readonly address: string;
  readonly values: string[];
}

/** Where each cell of the line being parsed ends (reused: no array of cells per line). */
let cellEnds = new Int32Array(64);

/**
 * Parses one data line; undefined when it cannot be used (column count, address or type). Only the
 * kept cells are cut out of the line: the national file has 36 columns and 21 fields are kept.
 */
export function parseRow(line: string, map: ColumnMap): ExtractionRow | undefined {
  if (cellEnds.length < map.columns) cellEnds = new Int32Array(map.columns);
  let cells = 0;
  for (let at = line.indexOf('|'); at !== -1; at = line.indexOf('|', at + 1)) {
    if (cells + 1 >= map.columns) return undefined;
    cellEnds[cells++] = at;
  }
  cellEnds[cells++] = line.length;
  if (cells !== map.columns) return undefined;
  const cell = (i: number) => line.slice(i === 0 ? 0 : cellEnds[i - 1]! + 1, cellEnds[i]);
  const address = normalizeAddress(cell(map.addressIndex));
  if (!address) return undefined;
  const values = map.fieldIndex.map((i) => (i < 0 ? '' : cell(i).trim()));
  values[0] = values[0]!.toUpperCase();
  if (!BAL_TYPES.has(values[0])) return undefined;
  return { address, values };
}

/**
 * Merges a repeated address: the first line wins, and its empty fields are filled from later ones.
 * `conflict` says whether the lines disagreed on a field both had.
 */
export function mergeValues(kept: string[], other: readonly string[]): { conflict: boolean } {
  let conflict = false;
  for (let i = 0; i < kept.length; i++) {
    const v = other[i] ?? '';
    if (v === '') continue;
    if (kept[i] === '') kept[i] = v;
    else if (kept[i] !== v) conflict = true;
  }
  return { conflict };
}

/**
 * Compact stored form: the values in ENTRY_FIELDS order joined with `|`, trailing empty fields
 * dropped. No value can hold a `|`: the extraction itself is `|`-separated.
 */
export function encodeValues(values: readonly string[]): string {
  let end = values.length;
  while (end > 1 && values[end - 1] === '') end--;
  let encoded = values[0] ?? '';
  for (let i = 1; i < end; i++) encoded += `|${values[i]}`;
  return encoded;
}

export function decodeValues(stored: string): string[] {
  const parts = stored.split('|');
  return ENTRY_FIELDS.map((_, i) => parts[i] ?? '');
}

export function entryFrom(address: string, values: readonly string[]): DirectoryEntry {
  const entry: Record<string, string> = { address };
  ENTRY_FIELDS.forEach((f, i) => {
    const v = values[i] ?? '';
    if (v !== '' || f === 'type') entry[f] = v;
  });
  return entry as DirectoryEntry;
}
