/**
 * The two pieces of RFC 5322 message format the gateway reads and writes itself, in one place: the
 * header scanner (the SMTP listeners' Message-ID and From/Sender checks, the lifecycle indicators'
 * Content-Type and X-MSS-* headers) and the date of the messages it generates (DSNs, inactivity
 * warnings). Messages are read as latin1 so that every octet maps to one character.
 */

/** The header section of a message, unfolded, read by field name. */
export interface ScannedHeaders {
  /** The first field of that name (case-insensitive), its value trimmed; undefined when absent. */
  value(name: string): string | undefined;
}

/**
 * Scans the header section: everything before the first empty line (RFC 5322 §2.1), or the whole
 * text when the message has no body or was cut short. Folded lines are joined (§2.2.3: CRLF
 * followed by white space is unfolded; a lone LF is accepted too, as spooled mail may carry one).
 * The fields are indexed by name at the first lookup, in one pass (a message's Message-ID and its
 * indicator headers are several lookups).
 */
export function scanHeaders(message: Buffer | string): ScannedHeaders {
  const text = typeof message === 'string' ? message : message.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  let fields: Map<string, string> | undefined;
  return {
    value: (name) => {
      fields ??= indexFields(head);
      return fields.get(name.toLowerCase());
    },
  };
}

/** The first value of each field name (lower-cased), trimmed: a name is what precedes a line's first colon. */
function indexFields(head: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of head.split(/\r\n|\r|\n/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const name = line.slice(0, colon).toLowerCase();
    if (!fields.has(name)) fields.set(name, line.slice(colon + 1).trim());
  }
  return fields;
}

/**
 * The headers the monthly indicators count (MSSANTE.md "Headers set by LPS software" and "Lifecycle
 * and indicators"), captured when the message is received and kept in its spool envelope, so that
 * counting a delivery never reads the message again. Each value is bounded: a sender cannot grow
 * the envelope.
 */
export interface IndicatorHeaders {
  /** `X-MSS-CODECDA`: document type codes of attached CDA, comma separated. */
  readonly cda?: string;
  /** `X-MSS-INS`: `O`/`N`, a qualified patient identity is present. */
  readonly ins?: string;
  /** `X-MSS-MES`: `FIN` closes a conversation with a patient. */
  readonly mes?: string;
  /** `X-MSS-NIL`: product reference of the sending software. */
  readonly nil?: string;
  /** `report-type` of a `multipart/report` (RFC 6522): `delivery-status` (DSN) or `disposition-notification` (MDN). */
  readonly reportType?: string;
}

const INDICATOR_HEADER_MAX = 256;

/** The indicator headers of a scanned header section (absent ones left out). */
export function indicatorHeadersOf(headers: ScannedHeaders): IndicatorHeaders {
  const get = (name: string) => headers.value(name)?.slice(0, INDICATOR_HEADER_MAX) || undefined;
  const reportType = /report-type\s*=\s*"?([a-z-]+)/i
    .exec(headers.value('Content-Type') ?? '')?.[1]
    ?.toLowerCase();
  const cda = get('X-MSS-CODECDA');
  const ins = get('X-MSS-INS');
  const mes = get('X-MSS-MES');
  const nil = get('X-MSS-NIL');
  return {
    ...(cda ? { cda } : {}),
    ...(ins ? { ins } : {}),
    ...(mes ? { mes } : {}),
    ...(nil ? { nil } : {}),
    ...(reportType ? { reportType } : {}),
  };
}

/** RFC 5322 §3.3 date-time in UTC, e.g. `Tue, 04 Mar 2025 10:00:00 +0000`. */
export function mailDate(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}
