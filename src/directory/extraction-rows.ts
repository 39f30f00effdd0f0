import { MAX_ADDRESS, MAX_LOCAL_PART, normalizeAddress, normalizeDomain } from '../shared/index.js';
import { BAL_TYPES, type ColumnMap, ENTRY_FIELDS } from './extraction-format.js';

/**
 * Reads one data line of the extraction straight from the bytes it arrived in: cells are found by a
 * byte loop, the kept fields are copied into the stored encoding (encodeValues' format), and the
 * canonical address and the national person id are produced as bytes too. Strings are made only
 * when asked for (a repeated address, a person seen before) and on the uncommon paths: a cell that
 * starts or ends with a non-ASCII byte, a type or an address that is not plain go through the same
 * string functions as parseRow(). What it produces is what parseRow() + encodeValues() produce from
 * the decoded line: the unit tests hold the two side by side.
 */

const PIPE = 0x7c;
const NATIONAL_ID = ENTRY_FIELDS.indexOf('nationalId');
/** The four types as 24-bit upper-case ASCII codes. */
const TYPE_CODES = new Set(
  [...BAL_TYPES].map((t) => (t.charCodeAt(0) << 16) | (t.charCodeAt(1) << 8) | t.charCodeAt(2)),
);

/** ASCII white space that String.prototype.trim() removes (it removes some non-ASCII too). */
function isSpace(b: number): boolean {
  return b === 0x20 || (b >= 0x09 && b <= 0x0d);
}

/** Domains of the file are few (hundreds to thousands): each is checked once. */
const DOMAIN_CACHE_LIMIT = 20_000;

export type RowOutcome = 'ok' | 'blank' | 'invalid';

export class RowReader {
  readonly #map: ColumnMap;
  readonly #cellStarts: Int32Array;
  readonly #cellEnds: Int32Array;
  /** Domain checks by a hash of their bytes: the domain, and whether it is its own canonical form. */
  readonly #domains = new Map<number, { readonly domain: string; readonly canonical: boolean }>();
  /** The stored encoding of the last line read ('ok'), bytes [0, valueLength). */
  readonly value: Buffer;
  valueLength = 0;
  /** The canonical address of the last line read ('ok'), bytes [0, addressLength), ASCII. */
  readonly addressBytes: Buffer;
  addressLength = 0;
  /** The upper-case national person id of the last line read, bytes [0, personLength); 0 when none. */
  personBytes: Buffer;
  personLength = 0;
  /** Most bytes writeValue() writes for the line scanned last. */
  valueBound = 0;
  /** The line scanned last, and its type as typeCode() gives it. */
  #line: Buffer = Buffer.alloc(0);
  #typeCode = 0;

  constructor(map: ColumnMap, maxLineBytes: number) {
    this.#map = map;
    this.#cellStarts = new Int32Array(map.columns);
    this.#cellEnds = new Int32Array(map.columns);
    // Never longer than the line: kept cells, trimmed, and one separator each.
    this.value = Buffer.allocUnsafe(maxLineBytes + ENTRY_FIELDS.length);
    this.addressBytes = Buffer.allocUnsafe(MAX_ADDRESS);
    this.personBytes = Buffer.allocUnsafe(256);
  }

  get columns(): number {
    return this.#map.columns;
  }

  /** The canonical address of the last line read. */
  get address(): string {
    return this.addressBytes.toString('latin1', 0, this.addressLength);
  }

  /** The national person id of the last line read, upper-case; '' when none. */
  get nationalId(): string {
    return this.personBytes.toString('utf8', 0, this.personLength);
  }

  /** Reads bytes [start, end) of `line` (no line break): scan(), then its value into `value`. */
  read(line: Buffer, start: number, end: number): RowOutcome {
    const outcome = this.scan(line, start, end);
    if (outcome === 'ok') this.valueLength = this.writeValue(this.value, 0);
    return outcome;
  }

  /**
   * Finds the cells of bytes [start, end) of `line` (no line break) and checks the line: its column
   * count, its address (into addressBytes) and its type. When 'ok', writeValue() writes its stored
   * encoding, until the next scan: the loader learns the address first, then writes the value
   * straight into the command that stores it (or aside, for a repeated address).
   */
  scan(line: Buffer, start: number, end: number): RowOutcome {
    if (isBlank(line, start, end)) return 'blank';
    const map = this.#map;
    const starts = this.#cellStarts;
    const ends = this.#cellEnds;
    let cells = 0;
    starts[0] = start;
    for (let i = start; i < end; i++) {
      if (line[i] !== PIPE) continue;
      if (cells + 1 >= map.columns) return 'invalid';
      ends[cells++] = i;
      starts[cells] = i + 1;
    }
    ends[cells++] = end;
    if (cells !== map.columns) return 'invalid';
    if (!this.#address(line, starts[map.addressIndex]!, ends[map.addressIndex]!)) return 'invalid';
    const type = map.fieldIndex[0]!;
    this.#typeCode = typeCode(line, starts[type]!, ends[type]!);
    if (this.#typeCode < 0) return 'invalid';
    this.#line = line;
    this.valueBound = end - start + ENTRY_FIELDS.length;
    return 'ok';
  }

  /**
   * Writes the stored encoding of the line scanned last at `at` of `out` (at most valueBound bytes)
   * and its person id into personBytes; the end of what it wrote.
   */
  writeValue(out: Buffer, at: number): number {
    const line = this.#line;
    const starts = this.#cellStarts;
    const ends = this.#cellEnds;
    const fields = this.#map.fieldIndex;
    const code = this.#typeCode;
    // The type is never empty: the value ends at least past it.
    out[at] = code >> 16;
    out[at + 1] = (code >> 8) & 0xff;
    out[at + 2] = code & 0xff;
    at += 3;
    let lastFilled = at;
    this.personLength = 0;
    for (let f = 1; f < fields.length; f++) {
      out[at++] = PIPE;
      const column = fields[f]!;
      if (column < 0) continue;
      let s = starts[column]!;
      let e = ends[column]!;
      while (s < e && isSpace(line[s]!)) s++;
      while (e > s && isSpace(line[e - 1]!)) e--;
      if (s === e) continue;
      const from = at;
      if (line[s]! >= 0x80 || line[e - 1]! >= 0x80) {
        // Non-ASCII at an edge: String.trim() decides what white space is.
        at += out.write(line.toString('utf8', s, e).trim(), at, 'utf8');
      } else {
        for (let i = s; i < e; i++) out[at++] = line[i]!;
      }
      if (at > from) lastFilled = at;
      if (f === NATIONAL_ID && at > from) this.#person(out, from, at);
    }
    return lastFilled;
  }

  /** The person id (bytes [from, to) of `value`), upper-case, into personBytes. */
  #person(value: Buffer, from: number, to: number): void {
    let ascii = to - from <= this.personBytes.length;
    for (let i = from; i < to && ascii; i++) ascii = value[i]! < 0x80;
    if (!ascii) {
      const upper = Buffer.from(value.toString('utf8', from, to).toUpperCase(), 'utf8');
      if (upper.length > this.personBytes.length) this.personBytes = Buffer.allocUnsafe(upper.length * 2);
      this.personLength = upper.copy(this.personBytes);
      return;
    }
    const person = this.personBytes;
    let n = 0;
    for (let i = from; i < to; i++) {
      const b = value[i]!;
      person[n++] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;
    }
    this.personLength = n;
  }

  /**
   * The canonical address of cell [s, e) into addressBytes; false when it is not an address. The
   * plain case (ASCII atoms of letters, digits, `_+-` joined by single dots, `@`, a domain of
   * letters, digits, dots and hyphens that is its own canonical form) is lower-cased byte by byte,
   * as checkAddress() would; anything else is given to normalizeAddress().
   */
  #address(line: Buffer, s: number, e: number): boolean {
    let ts = s;
    let te = e;
    while (ts < te && isSpace(line[ts]!)) ts++;
    while (te > ts && isSpace(line[te - 1]!)) te--;
    const out = this.addressBytes;
    let plain = te - ts <= MAX_ADDRESS;
    let at = -1;
    let afterDot = true; // no leading dot, no two dots, no dot before '@'
    let hash = 0x811c9dc5;
    for (let i = ts, n = 0; i < te && plain; i++, n++) {
      let b = line[i]!;
      if (b >= 0x41 && b <= 0x5a) b += 0x20;
      if ((b >= 0x61 && b <= 0x7a) || (b >= 0x30 && b <= 0x39) || b === 0x2d) afterDot = false;
      else if (b === 0x2e) {
        if (at < 0 && afterDot) plain = false;
        afterDot = true;
      } else if (b === 0x40) {
        if (at >= 0 || afterDot) plain = false;
        at = n;
      } else if ((b === 0x5f || b === 0x2b) && at < 0) afterDot = false;
      else plain = false;
      out[n] = b;
      if (at >= 0 && n > at) hash = Math.imul(hash ^ b, 0x01000193);
    }
    const length = te - ts;
    if (plain && at > 0 && at <= MAX_LOCAL_PART && this.#canonicalDomain(at + 1, length, hash)) {
      this.addressLength = length;
      return true;
    }
    const address = normalizeAddress(line.toString('utf8', s, e));
    if (address === undefined) return false;
    // Canonical addresses are ASCII (an IDNA domain): one byte a character.
    this.addressLength = out.write(address, 0, 'latin1');
    return true;
  }

  /** True when addressBytes [from, to) is a domain that is its own canonical form. */
  #canonicalDomain(from: number, to: number, hash: number): boolean {
    const bytes = this.addressBytes;
    const known = this.#domains.get(hash);
    if (known && sameText(known.domain, bytes, from, to)) return known.canonical;
    const domain = bytes.toString('latin1', from, to);
    const canonical = normalizeDomain(domain) === domain;
    if (!known) {
      if (this.#domains.size >= DOMAIN_CACHE_LIMIT) this.#domains.clear();
      this.#domains.set(hash, { domain, canonical });
    }
    return canonical;
  }
}

/**
 * The BAL type of cell [s, e) as a 24-bit upper-case ASCII code, or -1 when it is not one. Anything
 * but three letters (odd spacing, other letters) is judged as parseRow judges it.
 */
function typeCode(line: Buffer, s: number, e: number): number {
  while (s < e && isSpace(line[s]!)) s++;
  while (e > s && isSpace(line[e - 1]!)) e--;
  if (e - s === 3) {
    let code = 0;
    for (let i = s; i < e; i++) {
      const b = line[i]!;
      code = (code << 8) | (b >= 0x61 && b <= 0x7a ? b - 0x20 : b);
    }
    if (TYPE_CODES.has(code)) return code;
  }
  const type = line.toString('utf8', s, e).trim().toUpperCase();
  if (!BAL_TYPES.has(type)) return -1;
  return (type.charCodeAt(0) << 16) | (type.charCodeAt(1) << 8) | type.charCodeAt(2);
}

function sameText(text: string, bytes: Buffer, from: number, to: number): boolean {
  if (text.length !== to - from) return false;
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) !== bytes[from + i]) return false;
  return true;
}

/** Empty or white space only (as `line.trim() === ''` says of the decoded line). */
function isBlank(line: Buffer, start: number, end: number): boolean {
  let i = start;
  while (i < end && isSpace(line[i]!)) i++;
  if (i === end) return true;
  if (line[i]! < 0x80) return false;
  return line.toString('utf8', start, end).trim() === '';
}
