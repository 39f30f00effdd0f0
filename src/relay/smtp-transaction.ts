import { Transform, type Readable, type TransformCallback } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import {
  DotStuffer as DotStuffEncoder,
  type MessageProgress,
  type WireSession,
  sendEnvelope,
  sendMessage,
} from '../shared/index.js';
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
  /** RFC 2920: the envelope and DATA may go in one write. */
  readonly pipelining: boolean;
  readonly size?: number;
  readonly eightBitMime: boolean;
}

/**
 * The EHLO keywords that change what we send (RFC 1870 SIZE, RFC 6152 8BITMIME, RFC 3461 DSN,
 * RFC 2920 PIPELINING).
 */
export function capabilitiesOf(ehlo: SmtpReply): SessionCapabilities {
  let dsn = false;
  let eightBitMime = false;
  let pipelining = false;
  let size: number | undefined;
  for (const line of ehlo.lines.slice(1)) {
    const [keyword, arg] = line.toUpperCase().split(' ');
    if (keyword === 'DSN') dsn = true;
    if (keyword === '8BITMIME') eightBitMime = true;
    if (keyword === 'PIPELINING') pipelining = true;
    if (keyword === 'SIZE' && arg && /^\d+$/.test(arg) && Number(arg) > 0) size = Number(arg);
  }
  return { dsn, pipelining, eightBitMime, ...(size === undefined ? {} : { size }) };
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

export interface TransactionOptions {
  /** Longest wait for one reply, or for the connection to take more bytes. */
  readonly timeoutMs: number;
  /** Start with RSET: the connection carried a transaction before (it also proves it alive). */
  readonly reset: boolean;
}

export interface TransactionResult {
  /** One reply per recipient, in the order of the transaction's recipients. */
  readonly replies: RecipientReply[];
  /** The connection is in step and may carry the next transaction. */
  readonly reusable: boolean;
}

/**
 * The relay's side of the shared wire session (shared/smtp-envelope.ts): every reply and every
 * wait for the socket to drain has the command timeout; on expiry the connection is torn down and
 * the pending read fails with `timeout`. One timer per transaction, re-armed at each wait (a
 * timer and a race per reply cost more than the reply itself).
 */
function relayWire(
  socket: TLSSocket,
  reader: SmtpReplyReader,
  timeoutMs: number,
): WireSession & { done(): void } {
  let timer: NodeJS.Timeout | undefined;
  const expire = (): void => {
    // Fails the pending read (and any later one); a drain wait ends with the close.
    reader.fail(new RelayError('timeout'));
    socket.destroy();
  };
  const arm = (): void => {
    if (timer) timer.refresh();
    else timer = setTimeout(expire, timeoutMs);
  };
  return {
    next: () => {
      arm();
      return reader.next();
    },
    write: (data) => {
      const failed = reader.failure;
      if (failed) return Promise.reject(failed);
      arm();
      if (socket.write(data)) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const onDrain = (): void => {
          socket.off('close', onClose);
          resolve();
        };
        const onClose = (): void => {
          socket.off('drain', onDrain);
          reject(
            reader.failure ?? new RelayError('protocol_error', { reply: 'connection lost during DATA' }),
          );
        };
        socket.once('drain', onDrain);
        socket.once('close', onClose);
      });
    },
    done: () => clearTimeout(timer),
  };
}

/**
 * Runs one mail transaction over a judged, greeted session and returns one reply per recipient. A
 * refused MAIL FROM answers for every recipient; each RCPT answers for itself; the DATA reply answers
 * for the accepted ones (RFC 5321 §3.3). With PIPELINING (RFC 2920) the envelope and DATA go in one
 * write. Transport errors (timeout, connection lost) are thrown as RelayError; `progress.finalDot`
 * then says whether the remote may have the message: before the final ".", it cannot (an
 * unfinished DATA is discarded), so the caller may send again at once on another connection; after
 * it, the caller cannot know and retries later (at-least-once).
 */
export async function sendTransaction(
  session: { readonly socket: TLSSocket; readonly reader: SmtpReplyReader },
  caps: SessionCapabilities,
  tx: OutboundTransaction,
  options: TransactionOptions,
  progress: MessageProgress = { finalDot: false },
): Promise<TransactionResult> {
  if (caps.size !== undefined && tx.size > caps.size) {
    // RFC 1870 §6: the remote told us its limit; do not send what it would refuse.
    const replies = tx.recipients.map((r): RecipientReply => ({
      recipient: r.address,
      outcome: 'permanent',
      code: 552,
      enhancedCode: '5.3.4',
      text: `message size ${tx.size} exceeds the remote limit of ${caps.size}`,
    }));
    return { replies, reusable: true };
  }
  const wire = relayWire(session.socket, session.reader, options.timeoutMs);
  try {
    return await transaction(wire, caps, tx, options, progress);
  } finally {
    wire.done();
  }
}

async function transaction(
  wire: WireSession,
  caps: SessionCapabilities,
  tx: OutboundTransaction,
  options: TransactionOptions,
  progress: MessageProgress,
): Promise<TransactionResult> {
  const mailParams = [
    `SIZE=${tx.size}`,
    ...(caps.eightBitMime ? ['BODY=8BITMIME'] : []),
    ...(caps.dsn && tx.ret ? [`RET=${tx.ret}`] : []),
    ...(caps.dsn && tx.envid ? [`ENVID=${xtext(tx.envid)}`] : []),
  ];
  const rcptLine = (r: OutboundRecipient): string => {
    const params = caps.dsn
      ? [
          ...(r.notify?.length ? [`NOTIFY=${r.notify.join(',')}`] : []),
          ...(r.orcpt ? [`ORCPT=${r.orcpt.includes(';') ? r.orcpt : `rfc822;${xtext(r.orcpt)}`}`] : []),
        ]
      : [];
    return `RCPT TO:<${r.address}>${params.length ? ` ${params.join(' ')}` : ''}`;
  };
  const envelope = await sendEnvelope(wire, {
    reset: options.reset,
    mail: `MAIL FROM:<${tx.from}> ${mailParams.join(' ')}`,
    rcpts: tx.recipients.map(rcptLine),
    pipelining: caps.pipelining,
    outOfStep: (detail) => new RelayError('protocol_error', { reply: detail }),
  });
  // A refused MAIL answers for everyone (pipelined RCPTs then get 503, which says nothing).
  const mailRefused = envelope.mail.code < 200 || envelope.mail.code >= 300;
  const accepted = new Set(envelope.accepted);
  const replies = tx.recipients.map((r, i) => {
    if (accepted.has(i)) return undefined;
    const refusal = mailRefused ? envelope.mail : envelope.rcpts[i];
    return refusal ? replyOf(r.address, refusal) : undefined;
  });
  if (envelope.sendMessage) {
    const message = tx.message();
    try {
      await sendMessage(wire, message, progress);
    } finally {
      message.destroy();
    }
    const end = await wire.next();
    for (const i of envelope.accepted) replies[i] = replyOf(tx.recipients[i]!.address, end);
  } else if (envelope.data) {
    for (const i of envelope.accepted) replies[i] = replyOf(tx.recipients[i]!.address, envelope.data);
  }
  return {
    replies: replies.map((r, i) => {
      if (!r) throw new RelayError('protocol_error', { reply: `no reply for ${tx.recipients[i]!.address}` });
      return r;
    }),
    reusable: !envelope.outOfStep,
  };
}
