import { GatewayError } from '../errors/index.js';

/**
 * A minimal DER reader (X.690 §8 and §10): just enough to take a CRL apart for its signature check
 * and dates. It never re-encodes, so the signed bytes are checked exactly as the authority signed them.
 */
export interface DerNode {
  /** Identifier octet: class, constructed bit and tag number (low tag numbers only). */
  readonly tag: number;
  /** The whole TLV, identifier and length octets included. */
  readonly raw: Buffer;
  /** The value octets. */
  readonly content: Buffer;
}

export const DER = {
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  /** [0] constructed, context-specific (explicit tags of extensions, a certificate's version). */
  CONTEXT_0: 0xa0,
} as const;

export class DerError extends GatewayError {
  override readonly name = 'DerError';

  constructor(message: string) {
    super('DER_INVALID', message);
  }
}

/** Reads one TLV at `offset`; throws DerError on anything truncated or not DER. */
export function readDer(buf: Buffer, offset = 0): DerNode {
  if (offset + 2 > buf.length) throw new DerError('truncated DER');
  const tag = buf[offset]!;
  if ((tag & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used here');
  let length = buf[offset + 1]!;
  let header = 2;
  if (length & 0x80) {
    const n = length & 0x7f;
    // X.690 §10.1: definite form only; 4 length bytes cover any CRL we accept.
    if (n === 0 || n > 4) throw new DerError('unsupported DER length');
    if (offset + 2 + n > buf.length) throw new DerError('truncated DER');
    length = 0;
    for (let i = 0; i < n; i++) length = length * 256 + buf[offset + 2 + i]!;
    header += n;
  }
  const end = offset + header + length;
  if (end > buf.length) throw new DerError('truncated DER');
  return { tag, raw: buf.subarray(offset, end), content: buf.subarray(offset + header, end) };
}

/** The TLVs inside a constructed node (SEQUENCE, SET, explicit tag). */
export function children(node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  for (let offset = 0; offset < node.content.length;) {
    const child = readDer(node.content, offset);
    out.push(child);
    offset += child.raw.length;
  }
  return out;
}

/** Dotted form of an OBJECT IDENTIFIER's content octets (X.690 §8.19). */
export function oidOf(node: DerNode): string {
  if (node.tag !== DER.OID || node.content.length === 0) throw new DerError('not an OID');
  const parts: number[] = [];
  let value = 0;
  for (const byte of node.content) {
    value = value * 128 + (byte & 0x7f);
    if ((byte & 0x80) === 0) {
      parts.push(value);
      value = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join('.');
}

/** UTCTime (RFC 5280 §4.1.2.5.1: YYMMDDHHMMSSZ, 50–99 → 19xx) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
export function timeOf(node: DerNode): Date {
  const text = node.content.toString('latin1');
  const m =
    node.tag === DER.UTC_TIME
      ? /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
      : node.tag === DER.GENERALIZED_TIME
        ? /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/.exec(text)
        : null;
  if (!m) throw new DerError(`not a DER time: ${JSON.stringify(text)}`);
  let year = Number(m[1]);
  if (node.tag === DER.UTC_TIME) year += year < 50 ? 2000 : 1900;
  return new Date(Date.UTC(year, Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6])));
}

export function isTime(node: DerNode | undefined): node is DerNode {
  return node?.tag === DER.UTC_TIME || node?.tag === DER.GENERALIZED_TIME;
}
