/**
 * Delivery status notifications (RFC 3464 inside RFC 6522 multipart/report, driven by the RFC 3461
 * parameters kept in the spool). Pure: the caller supplies the clock's `date`, and sends the result
 * with a null reverse-path (RFC 3461 §6.2, RFC 5321 §4.5.5) so that a DSN never triggers another.
 */
import { randomUUID } from 'node:crypto';
import { encodeWords, foldLines } from 'nodemailer/lib/mime-funcs/index.js';
import { encode as qpEncode, wrap as qpWrap } from 'nodemailer/lib/qp/index.js';
import { GatewayError } from '../errors/index.js';
import { returnedContent } from './dsn-original.js';
import { mailDate } from './message-format.js';
import { DSN_SUBJECTS, dsnHumanText } from './dsn-text.js';
import { dsnWanted, type DsnAction, type DsnPolicy } from './dsn-wanted.js';
import type { SpoolEnvelope, SpoolRecipient } from './spool-entry.js';

/** One recipient the notification is about. */
export interface DsnRecipientReport {
  /** The spool recipient: its address, NOTIFY and ORCPT. */
  readonly recipient: Pick<SpoolRecipient, 'address' | 'dsn'>;
  /** RFC 3463 enhanced status code: `2.x.x` delivered, `4.x.x` delayed, `4.x.x`/`5.x.x` failed. */
  readonly status: string;
  /** The remote reply, `550 5.1.1 No such user` or already typed (`smtp; 550 …`). */
  readonly diagnostic?: string;
  /** Host name of the remote MTA, reported as `dns; <name>`. */
  readonly remoteMta?: string;
  readonly lastAttemptAt?: Date;
  /** For `delayed`: when we give up. */
  readonly willRetryUntil?: Date;
}

export interface DsnInput {
  readonly action: DsnAction;
  /** The original envelope: sender, RET, ENVID, arrival date. */
  readonly envelope: Pick<SpoolEnvelope, 'mailFrom' | 'dsn' | 'receivedAt'>;
  readonly recipients: readonly DsnRecipientReport[];
  /** Our host name: `Reporting-MTA: dns; <hostname>` and the Message-ID's right side. */
  readonly hostname: string;
  /** The DSN's From: address (a domain of ours, so replies reach someone). Default MAILER-DAEMON@hostname. */
  readonly from?: string;
  /** The original message, or a way to read it (only called when a DSN is built). */
  readonly original: Buffer | (() => Buffer);
  /** Now, from the injected clock. */
  readonly date: Date;
  /** Message-ID of the DSN, `<…>`. Default: a random UUID at `hostname`. */
  readonly messageId?: string;
  readonly policy?: DsnPolicy;
  /** Larger originals are returned as headers only even with RET=FULL. Default: 10 MiB. */
  readonly maxFullSize?: number;
}

export interface BuiltDsn {
  /** Null reverse-path; the forward-path is the original sender. */
  readonly envelope: { readonly from: ''; readonly to: string };
  /** The whole message, CRLF line endings, every line within 998 octets. */
  readonly raw: Buffer;
  /** The recipients reported, after NOTIFY filtering. */
  readonly recipients: readonly string[];
  /** The returned original holds 8-bit octets: send with BODY=8BITMIME. */
  readonly eightBit: boolean;
}

const DEFAULT_MAX_FULL_SIZE = 10 * 1024 * 1024;
const STATUS = /^([245])\.\d{1,3}\.\d{1,3}$/;
const STATUS_CLASSES: Readonly<Record<DsnAction, string>> = { failed: '45', delayed: '4', delivered: '2' };

/** message/delivery-status is US-ASCII, one line per field (RFC 3464 §2.1). */
function ascii(value: string, max = 900): string {
  return value
    .replace(/[\p{Cc}]+/gu, ' ')
    .replace(/[^\x20-\x7e]/g, '?')
    .trim()
    .slice(0, max);
}

function typed(value: string, type: string): string {
  const clean = ascii(value);
  return /^[A-Za-z0-9-]+;/.test(clean) ? clean : `${type}; ${clean}`;
}

function checkStatus(action: DsnAction, status: string): void {
  const cls = STATUS.exec(status)?.[1];
  if (cls === undefined || !STATUS_CLASSES[action].includes(cls)) {
    throw new GatewayError('INTERNAL', `status ${status} does not fit a ${action} DSN`, { action, status });
  }
}

/** Per-message fields, then one group per recipient, blank-line separated (RFC 3464 §2.2, §2.3). */
function deliveryStatus(input: DsnInput, reports: readonly DsnRecipientReport[]): string {
  const arrival = new Date(input.envelope.receivedAt);
  const message = [`Reporting-MTA: dns; ${ascii(input.hostname)}`];
  if (input.envelope.dsn?.envid) message.push(`Original-Envelope-Id: ${ascii(input.envelope.dsn.envid)}`);
  if (!Number.isNaN(arrival.getTime())) message.push(`Arrival-Date: ${mailDate(arrival)}`);
  const groups = reports.map((r) => {
    const lines = [`Final-Recipient: ${typed(r.recipient.address, 'rfc822')}`];
    if (r.recipient.dsn?.orcpt) lines.push(`Original-Recipient: ${typed(r.recipient.dsn.orcpt, 'rfc822')}`);
    lines.push(`Action: ${input.action}`, `Status: ${r.status}`);
    if (r.remoteMta) lines.push(`Remote-MTA: ${typed(r.remoteMta, 'dns')}`);
    if (r.diagnostic) lines.push(`Diagnostic-Code: ${typed(r.diagnostic, 'smtp')}`);
    if (r.lastAttemptAt) lines.push(`Last-Attempt-Date: ${mailDate(r.lastAttemptAt)}`);
    if (r.willRetryUntil && input.action === 'delayed') {
      lines.push(`Will-Retry-Until: ${mailDate(r.willRetryUntil)}`);
    }
    return lines.join('\r\n');
  });
  return [message.join('\r\n'), ...groups].join('\r\n\r\n') + '\r\n';
}

function humanPart(input: DsnInput, reports: readonly DsnRecipientReport[]): string {
  const until = reports
    .map((r) => r.willRetryUntil?.getTime())
    .filter((t): t is number => t !== undefined)
    .reduce<number | undefined>((a, b) => (a === undefined || b > a ? b : a), undefined);
  const text = dsnHumanText({
    action: input.action,
    recipients: reports.map((r) => ({
      address: r.recipient.address,
      status: r.status,
      ...(r.diagnostic ? { diagnostic: r.diagnostic.replace(/[\p{Cc}]+/gu, ' ').slice(0, 500) } : {}),
      ...(r.remoteMta ? { remoteMta: ascii(r.remoteMta, 255) } : {}),
    })),
    ...(until !== undefined && input.action === 'delayed'
      ? { willRetryUntil: mailDate(new Date(until)) }
      : {}),
  });
  return qpWrap(qpEncode(text), 76).replace(/\r?\n/g, '\r\n');
}

/**
 * Builds the DSN for `input.recipients`, keeping only those whose NOTIFY asks for this action
 * (see `dsnWanted`). Returns undefined when there is nothing to send: the original had a null
 * sender (a DSN or MDN; RFC 3461 §6.2 forbids answering it) or no recipient wants the notice.
 * Throws GatewayError INTERNAL on a status code that does not fit the action (a caller bug).
 */
export { dsnWanted, type DsnAction, type DsnPolicy } from './dsn-wanted.js';

export function buildDsn(input: DsnInput): BuiltDsn | undefined {
  if (input.envelope.mailFrom === '') return undefined;
  const reports = input.recipients.filter((r) => dsnWanted(input.action, r.recipient, input.policy));
  if (reports.length === 0) return undefined;
  for (const r of reports) checkStatus(input.action, r.status);

  const host = ascii(input.hostname, 255);
  const original = typeof input.original === 'function' ? input.original() : input.original;
  const returned = returnedContent(
    original,
    input.envelope.dsn?.ret,
    input.maxFullSize ?? DEFAULT_MAX_FULL_SIZE,
  );
  const boundary = `dsn-${randomUUID()}`;
  const head = [
    `From: Mail Delivery System <${ascii(input.from ?? `MAILER-DAEMON@${host}`, 320)}>`,
    `To: <${input.envelope.mailFrom.replace(/[\p{Cc}<>]/gu, '')}>`,
    foldLines(`Subject: ${encodeWords(DSN_SUBJECTS[input.action], 'Q', 52)}`, 76).replace(/\r?\n/g, '\r\n'),
    `Date: ${mailDate(input.date)}`,
    `Message-ID: ${input.messageId ?? `<${randomUUID()}@${host}>`}`,
    // RFC 3834 §5: keeps auto-responders from answering the report.
    'Auto-Submitted: auto-replied',
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
  ];
  const text = [
    ...head,
    '',
    'This is a MIME-encapsulated delivery status notification.',
    `--${boundary}`,
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    humanPart(input, reports),
    `--${boundary}`,
    'Content-Type: message/delivery-status',
    '',
    deliveryStatus(input, reports),
    `--${boundary}`,
    `Content-Type: ${returned.contentType}`,
    ...(returned.eightBit ? ['Content-Transfer-Encoding: 8bit'] : []),
    '',
    '',
  ].join('\r\n');
  const raw = Buffer.concat([
    Buffer.from(text, 'utf8'),
    returned.body,
    Buffer.from(`\r\n--${boundary}--\r\n`, 'latin1'),
  ]);
  return {
    envelope: { from: '', to: input.envelope.mailFrom },
    raw,
    recipients: reports.map((r) => r.recipient.address),
    eightBit: returned.eightBit,
  };
}
