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

const SPECIALS = /[.*+?^${}()|[\]\\-]/g;

/**
 * Scans the header section: everything before the first empty line (RFC 5322 §2.1), or the whole
 * text when the message has no body or was cut short. Folded lines are joined (§2.2.3: CRLF
 * followed by white space is unfolded; a lone LF is accepted too, as spooled mail may carry one).
 */
export function scanHeaders(message: Buffer | string): ScannedHeaders {
  const text = typeof message === 'string' ? message : message.toString('latin1');
  const end = text.search(/\r?\n\r?\n/);
  const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
  return {
    value: (name) =>
      new RegExp(`^${name.replace(SPECIALS, '\\$&')}:[ \\t]*(.*)$`, 'im').exec(head)?.[1]?.trim(),
  };
}

/** RFC 5322 §3.3 date-time in UTC, e.g. `Tue, 04 Mar 2025 10:00:00 +0000`. */
export function mailDate(d: Date): string {
  return d.toUTCString().replace(/GMT$/, '+0000');
}
