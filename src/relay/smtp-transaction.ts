import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import { DotStuffer as DotStuffEncoder } from '../shared/index.js';
import { RelayError } from './relay-error.js';
import type { SmtpReply, SmtpReplyReader } from './smtp-reply-reader.js';

/** A recipient as the relay sends it, with its RFC 3461 parameters. */
export interface OutboundRecipient {
  readonly address: string;
  readonly notify?: readonly string[];
  readonly orcpt?: string;
}

export interface OutboundTransaction {
  /** Empty for the null reverse-path (a DSN). */
  readonly from: string;
  readonly recipients: readonly OutboundRecipient[];
  /** RFC 3461 RET and ENVID, sent only when the remote advertises DSN. */
  readonly ret?: string;
  readonly envid?: string;
  readonly size: number;
  readonly message: () => Readable;
}

/** One recipient's outcome at the remote MX. */
export interface RecipientReply {
  readonly recipient: string;
  readonly outcome: 'delivered' | 'temporary' | 'permanent';
  readonly code: number;
  readonly enhancedCode?: string;
  readonly text: string;
}

export interface SessionCapabilities {
  readonly dsn: boolean;
  readonly size?: number;
  readonly eightBitMime: boolean;
}

/** The EHLO keywords that change what we send (RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3461 DSN). */
export function capabilitiesOf(ehlo: SmtpReply): SessionCapabilities {
  let dsn = false;
  let eightBitMime = false;
  let size: number | undefined;
  for (const line of ehlo.lines.slice(1)) {
    const [keyword, arg] = line.toUpperCase().split(' ');
    if (keyword === 'DSN') dsn = true;
    if (keyword === '8BITMIME') eightBitMime = true;
    if (keyword === 'SIZE' && arg && /^\d+$/.test(arg) && Number(arg) > 0) size = Number(arg);
  }
  return { dsn, eightBitMime, ...(size === undefined ? {} : { size }) };
}

const ENHANCED = /^\d{3}[ -]?([245]\.\d{1,3}\.\d{1,3})\b/;

function replyOf(recipient: string, reply: SmtpReply): RecipientReply {
  const enhanced = ENHANCED.exec(reply.raw)?.[1];
  const outcome = reply.code < 400 ? 'delivered' : reply.code < 500 ? 'temporary' : 'permanent';
  return {
    recipient,
    outcome,
    code: reply.code,
    ...(enhanced ? { enhancedCode: enhanced } : {}),
    text:
      reply.raw
        .replace(/^\d{3}[ -]?/, '')
        .replace(/^[245]\.\d{1,3}\.\d{1,3}\s*/, '')
        .trim() || reply.raw,
  };
}

/** RFC 3461 §4.2 xtext for ORCPT and ENVID: `+`, `=` and anything outside 33–126 as `+XX`. */
function xtext(value: string): string {
  return value.replace(/[^\x21-\x2a\x2c-\x3c\x3e-\x7e]/g, (c) =>
    Buffer.from(c, 'utf8').reduce((s, b) => s + `+${b.toString(16).toUpperCase().padStart(2, '0')}`, ''),
  );
}

/**
 * SMTP's DATA encoding (RFC 5321 §4.5.2) as a stream: a line that starts with `.` gets one more;
 * bare CR and bare LF become CRLF (§2.3.8: they are only sent as line ends); the end is
 * `CRLF.CRLF`, with a CRLF added when the message does not end with one. The byte encoder is the
 * one LMTP uses (shared/smtp-wire.ts), so the relay and local delivery send the same bytes.
 */
export class DotStuffer extends Transform {
  readonly #encoder = new DotStuffEncoder();

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    done(null, this.#encoder.encode(chunk));
  }

  override _flush(done: TransformCallback): void {
    done(null, this.#encoder.end());
  }
}

/**
 * Runs one mail transaction over a judged, greeted session and returns one reply per recipient. A
 * refused MAIL FROM answers for every recipient; each RCPT answers for itself; the DATA reply answers
 * for the accepted ones (RFC 5321 §3.3). Transport errors (timeout, connection lost) are thrown as
 * RelayError: the caller cannot know whether the message arrived, so it retries (at-least-once).
 */
export async function sendTransaction(
  session: { readonly socket: TLSSocket; readonly reader: SmtpReplyReader },
  caps: SessionCapabilities,
  tx: OutboundTransaction,
  timeoutMs: number,
): Promise<RecipientReply[]> {
  const { socket, reader } = session;
  const ask = async (command: string): Promise<SmtpReply> => {
    socket.write(`${command}\r\n`);
    return withTimeout(reader.next(), timeoutMs, socket);
  };
  if (caps.size !== undefined && tx.size > caps.size) {
    // RFC 1870 §6: the remote told us its limit; do not send what it would refuse.
    return tx.recipients.map((r) => ({
      recipient: r.address,
      outcome: 'permanent',
      code: 552,
      enhancedCode: '5.3.4',
      text: `message size ${tx.size} exceeds the remote limit of ${caps.size}`,
    }));
  }
  const mailParams = [
    `SIZE=${tx.size}`,
    ...(caps.eightBitMime ? ['BODY=8BITMIME'] : []),
    ...(caps.dsn && tx.ret ? [`RET=${tx.ret}`] : []),
    ...(caps.dsn && tx.envid ? [`ENVID=${xtext(tx.envid)}`] : []),
  ];
  const mail = await ask(`MAIL FROM:<${tx.from}> ${mailParams.join(' ')}`);
  if (mail.code !== 250) {
    await ask('RSET').catch(() => undefined);
    return tx.recipients.map((r) => replyOf(r.address, mail));
  }
  const replies = new Map<string, RecipientReply>();
  const accepted: string[] = [];
  for (const r of tx.recipients) {
    const params = caps.dsn
      ? [
          ...(r.notify?.length ? [`NOTIFY=${r.notify.join(',')}`] : []),
          ...(r.orcpt ? [`ORCPT=${r.orcpt.includes(';') ? r.orcpt : `rfc822;${xtext(r.orcpt)}`}`] : []),
        ]
      : [];
    const rcpt = await ask(`RCPT TO:<${r.address}>${params.length ? ` ${params.join(' ')}` : ''}`);
    if (rcpt.code === 250 || rcpt.code === 251) accepted.push(r.address);
    else replies.set(r.address, replyOf(r.address, rcpt));
  }
  if (accepted.length > 0) {
    const go = await ask('DATA');
    if (go.code !== 354) {
      for (const a of accepted) replies.set(a, replyOf(a, go));
      await ask('RSET');
    } else {
      await withTimeout(streamBody(tx.message(), socket), timeoutMs, socket);
      const end = await withTimeout(reader.next(), timeoutMs, socket);
      for (const a of accepted) replies.set(a, replyOf(a, end));
    }
  } else {
    await ask('RSET');
  }
  return tx.recipients.map((r) => replies.get(r.address)!);
}

/** Writes the dot-stuffed message without ending the socket, honouring back-pressure. */
async function streamBody(message: Readable, socket: TLSSocket): Promise<void> {
  const stuffer = new DotStuffer();
  message.once('error', (err) => stuffer.destroy(err));
  for await (const chunk of message.pipe(stuffer)) {
    if (socket.write(chunk as Buffer)) continue;
    await new Promise<void>((resolve, reject) => {
      const onDrain = () => {
        socket.off('close', onClose);
        resolve();
      };
      const onClose = () => {
        socket.off('drain', onDrain);
        reject(new RelayError('protocol_error', { reply: 'connection lost during DATA' }));
      };
      socket.once('drain', onDrain);
      socket.once('close', onClose);
    });
  }
}

async function withTimeout<T>(work: Promise<T>, ms: number, socket: TLSSocket): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          socket.destroy();
          reject(new RelayError('timeout'));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
