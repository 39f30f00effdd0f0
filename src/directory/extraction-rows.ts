import { normalizeAddress, normalizeDomain, MAX_ADDRESS, MAX_LOCAL_PART } from '../shared/index.js';
import { type ColumnMap, ENTRY_FIELDS } from './extraction-format.js';

/**
 * Reads one data line of the extraction straight from the bytes it arrived in: the cells are found
 * by a byte loop, the kept fields are copied into the stored encoding (encodeValues' format) without
 * a string per cell, and only the address and the national person id become strings. What it
 * produces is what parseRow() + encodeValues() produce from the decoded line (the unit tests hold
 * the two side by side); anything out of the plain ASCII case (a cell starting or ending with a
 * non-ASCII byte, a type or address that is not plain) goes through the same string functions.
 */

const PIPE = 0x7c;
const NATIONAL_ID = ENTRY_FIELDS.indexOf('nationalId');
const BAL_TYPES = new Set(['PER', 'ORG', 'APP', 'CAB']);
/** The four types as 24-bit upper-case ASCII codes. */
const TYPE_CODES = new Set(
  [...BAL_TYPES].map((t) => (t.charCodeAt(0) << 16) | (t.charCodeAt(1) << 8) | t.charCodeAt(2)),
);

/** ASCII white space that String.prototype.trim() removes (it removes some non-ASCII too). */
function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/** A plain lower-case address whose canonical form is itself when its domain is canonical. */
const PLAIN_ADDRESS = /^[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@[a-z0-9.-]+$/;
/** Domains of the file are few (hundreds to thousands): each is checked once. */
const DOMAIN_CACHE_LIMIT = 20_000;

export type RowOutcome = 'ok' | 'blank' | 'invalid';

export class RowReader {
  readonly #map: ColumnMap;
  #cellEnds: Int32Array;
  readonly #domains = new Map<string, boolean>();
  /** The stored encoding of the last line read ('ok'), bytes [0, valueLength). */
  value: Buffer;
  valueLength = 0;
  /** Canonical address of the last line read ('ok'). */
  address = '';
  /** National person id of the last line read, upper-case, '' when none. */
  nationalId = '';

  constructor(map: ColumnMap, maxLineBytes: number) {
    this.#map = map;
    this.#cellEnds = new Int32Array(map.columns);
    // The encoding is never longer than the line (kept cells and at most one separator each), but
    // a cell whose trimmed text is re-encoded may grow: U+FFFD is 3 bytes for 1 bad byte.
    this.value = Buffer.allocUnsafe(maxLineBytes * 3 + ENTRY_FIELDS.length);
  }

  get columns(): number {
    return this.#map.columns;
  }

  /** Reads bytes [start, end) of `line` (no line break); fills value, address, nationalId. */
  read(line: Buffer, start: number, end: number): RowOutcome {
    if (isBlank(line, start, end)) return 'blank';
    const map = this.#map;
    const ends = this.#cellEnds;
    let cells = 0;
    for (let i = start; i < end; i++) {
      if (line[i] !== PIPE) continue;
      if (cells + 1 >= map.columns) return 'invalid';
      ends[cells++] = i;
    }
    ends[cells++] = end;
    if (cells !== map.columns) return 'invalid';
    const cellStart = (c: number) => (c === 0 ? start : ends[c - 1]! + 1);

    const address = this.#address(line, cellStart(map.addressIndex), ends[map.addressIndex]!);
    if (address === undefined) return 'invalid';
    this.address = address;

    const out = this.value;
    let at = 0;
    let lastFilled = 0;
    this.nationalId = '';
    for (let f = 0; f < map.fieldIndex.length; f++) {
      if (f > 0) out[at++] = PIPE;
      const column = map.fieldIndex[f]!;
      if (column < 0) continue;
      let s = cellStart(column);
      let e = ends[column]!;
      while (s < e && isSpace(line[s]!)) s++;
      while (e > s && isSpace(line[e - 1]!)) e--;
      const from = at;
      if (f === 0) {
        const typed = this.#type(line, s, e, at);
        if (typed < 0) return 'invalid';
        at = typed;
      } else if (s < e && (line[s]! >= 0x80 || line[e - 1]! >= 0x80)) {
        // Non-ASCII at an edge: String.trim() decides what white space is.
        at += out.write(line.toString('utf8', s, e).trim(), at, 'utf8');
      } else {
        for (let i = s; i < e; i++) out[at++] = line[i]!;
      }
      if (at > from) lastFilled = at;
      if (f === NATIONAL_ID && at > from) this.nationalId = out.toString('utf8', from, at).toUpperCase();
    }
    this.valueLength = lastFilled;
    return 'ok';
  }

  /** Writes the upper-case type at `at`; the new end, or -1 when it is not a BAL type. */
  #type(line: Buffer, s: number, e: number, at: number): number {
    const out = this.value;
    if (e - s === 3) {
      let code = 0;
      for (let i = s; i < e; i++) {
        const b = line[i]!;
        const upper = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
        code = (code << 8) | upper;
      }
      if (TYPE_CODES.has(code)) {
        out[at] = code >> 16;
        out[at + 1] = (code >> 8) & 0xff;
        out[at + 2] = code & 0xff;
        return at + 3;
      }
    }
    // Whatever else (odd spacing, other letters) is judged as parseRow judges it.
    const type = line.toString('utf8', s, e).trim().toUpperCase();
    if (!BAL_TYPES.has(type)) return -1;
    return at + out.write(type, at, 'utf8');
  }

  #address(line: Buffer, s: number, e: number): string | undefined {
    let ts = s;
    let te = e;
    while (ts < te && isSpace(line[ts]!)) ts++;
    while (te > ts && isSpace(line[te - 1]!)) te--;
    const plain = line.toString('latin1', ts, te).toLowerCase();
    if (plain.length <= MAX_ADDRESS && PLAIN_ADDRESS.test(plain)) {
      const at = plain.indexOf('@');
      if (at <= MAX_LOCAL_PART && this.#canonicalDomain(plain.slice(at + 1))) return plain;
    }
    return normalizeAddress(line.toString('utf8', s, e));
  }

  /** True when the domain is its own canonical form (then so is a plain address in it). */
  #canonicalDomain(domain: string): boolean {
    let ok = this.#domains.get(domain);
    if (ok === undefined) {
      if (this.#domains.size >= DOMAIN_CACHE_LIMIT) this.#domains.clear();
      ok = normalizeDomain(domain) === domain;
      this.#domains.set(domain, ok);
    }
    return ok;
  }
}

/** Empty or white space only (as `line.trim() === ''` says of the decoded line). */
function isBlank(line: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && isSpace(line[i]!)) i++;
  if (i === end) return true;
  if (line[i]! < 0x80) return false;
  return line.toString('utf8', start, end).trim() === '';
}
