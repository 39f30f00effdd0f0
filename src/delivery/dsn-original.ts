/**
 * The third part of a DSN (RFC 3464 §2, RFC 6522 §3): the whole original as `message/rfc822` when the
 * sender asked RET=FULL, otherwise only its header as `text/rfc822-headers`.
 */
export interface ReturnedContent {
  readonly contentType: 'message/rfc822' | 'text/rfc822-headers';
  /** CRLF line endings, ending with CRLF. */
  readonly body: Buffer;
  /** True when `body` holds octets above 127: the part is labelled 8bit and needs BODY=8BITMIME. */
  readonly eightBit: boolean;
}

/** RFC 5322 §2.1.1: 998 octets per line, CRLF excluded. */
const MAX_LINE_OCTETS = 998;

const CR = 0x0d;
const LF = 0x0a;

/** Bare LF (a message stored by a Unix tool) becomes CRLF; CRLF input is returned as is. */
function toCrlf(raw: Buffer): Buffer {
  let bare = false;
  for (let i = 0; i < raw.length; i++) {
    if (raw[i] === LF && (i === 0 || raw[i - 1] !== CR)) {
      bare = true;
      break;
    }
  }
  if (!bare) return raw;
  return Buffer.from(raw.toString('latin1').replace(/\r?\n/g, '\r\n'), 'latin1');
}

function longestLine(buf: Buffer): number {
  let longest = 0;
  let start = 0;
  for (let i = 0; i <= buf.length; i++) {
    if (i === buf.length || buf[i] === LF) {
      const end = i > start && buf[i - 1] === CR ? i - 1 : i;
      longest = Math.max(longest, end - start);
      start = i + 1;
    }
  }
  return longest;
}

function hasEightBit(buf: Buffer): boolean {
  return buf.some((b) => b > 0x7f);
}

/** The header block, up to and including the CRLF of its last line (the blank line excluded). */
function headerBlock(raw: Buffer): Buffer {
  const crlf = toCrlf(raw);
  if (crlf.subarray(0, 2).toString('latin1') === '\r\n') return Buffer.alloc(0);
  const end = crlf.indexOf('\r\n\r\n');
  if (end >= 0) return crlf.subarray(0, end + 2);
  return crlf.subarray(crlf.length - 2).toString('latin1') === '\r\n'
    ? crlf
    : Buffer.concat([crlf, Buffer.from('\r\n')]);
}

/** Lines over the limit are cut: the headers are for diagnosis, not for replay. */
function clipLines(buf: Buffer): Buffer {
  if (longestLine(buf) <= MAX_LINE_OCTETS) return buf;
  const lines = buf.toString('latin1').split('\r\n');
  return Buffer.from(lines.map((l) => l.slice(0, MAX_LINE_OCTETS)).join('\r\n'), 'latin1');
}

/**
 * Picks what to return. RET=FULL is honoured only when the original can travel unchanged (every line
 * within 998 octets, size within `maxFullSize`); otherwise the headers are returned, which RFC 3461
 * §4.3 allows ("the MTA MAY return only the headers").
 */
export function returnedContent(raw: Buffer, ret: string | undefined, maxFullSize: number): ReturnedContent {
  const crlf = toCrlf(raw);
  const full =
    ret?.toUpperCase() === 'FULL' && crlf.length <= maxFullSize && longestLine(crlf) <= MAX_LINE_OCTETS;
  if (full) {
    const body =
      crlf.subarray(crlf.length - 2).toString('latin1') === '\r\n'
        ? crlf
        : Buffer.concat([crlf, Buffer.from('\r\n')]);
    return { contentType: 'message/rfc822', body, eightBit: hasEightBit(body) };
  }
  const body = clipLines(headerBlock(crlf));
  return { contentType: 'text/rfc822-headers', body, eightBit: hasEightBit(body) };
}
