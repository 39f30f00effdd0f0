import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import { type Spool, type SpoolEnvelope, indicatorHeadersOf } from '../delivery/index.js';
import { type ErrorCode, GatewayError } from '../errors/index.js';
import { HeaderCapture } from './header-scan.js';
import { type AcceptedTransaction, spoolEnvelopeOf } from './mx-transaction.js';

/** A look at the headers before the message is committed (submission's From:/Sender: rules). */
export type HeaderInspection =
  | { readonly ok: true; readonly prepend?: string }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string };

export interface IncomingMessage {
  readonly spool: Spool;
  readonly session: SMTPServerSession;
  readonly stream: SMTPServerDataStream;
  /** Our Received: header, written on top. */
  readonly received: string;
  readonly transaction: Omit<AcceptedTransaction, 'size' | 'messageId'>;
  readonly inspect?: (headers: HeaderCapture) => Promise<HeaderInspection>;
  /** Set when the connection closes before the message is complete. */
  readonly abort?: ReceiveAbort;
}

/**
 * A message's link to its connection going away (DataFlow.abort): a plain flag and hook rather
 * than an AbortSignal, whose EventTarget listener cost a registration and a removal per message.
 */
export interface ReceiveAbort {
  aborted: boolean;
  /** Installed while the message is received: fails its body at once. */
  onAbort?: (() => void) | undefined;
}

export type SpoolOutcome =
  | { readonly ok: true; readonly envelope: SpoolEnvelope }
  | { readonly ok: false; readonly code: ErrorCode; readonly reason: string; readonly cause?: unknown };

/**
 * Streams a message into the spool and commits it (the durability rule of ARCHITECTURE.md §6):
 * once this returns ok, the message survives a crash and 250 may be sent. On any refusal nothing
 * stays behind.
 */
export async function spoolIncoming(m: IncomingMessage): Promise<SpoolOutcome> {
  const { spool, stream, transaction } = m;
  const capture = new HeaderCapture();
  // Its errors reach the spool write through its pipeline; this covers the moment before that.
  capture.on('error', () => {});
  stream.pipe(capture);
  // smtp-server never ends the data stream of a connection that dropped mid-DATA: the body is
  // failed here instead, so that the spool write gives up and removes its temporary file.
  const onAbort = () => {
    stream.unpipe(capture);
    stream.resume();
    capture.destroy(new GatewayError('SPOOL_FAILED', 'connection closed during DATA'));
  };
  if (m.abort?.aborted) onAbort();
  else if (m.abort) m.abort.onAbort = onAbort;
  let size: number;
  try {
    size = await spool.writeMessage(transaction.id, Buffer.from(m.received, 'latin1'), capture);
  } catch (cause) {
    stream.resume();
    return { ok: false, code: 'SPOOL_FAILED', reason: 'spool_failed', cause };
  } finally {
    if (m.abort) m.abort.onAbort = undefined;
  }
  if (stream.sizeExceeded) {
    await spool.discard(transaction.id);
    return { ok: false, code: 'MESSAGE_TOO_LARGE', reason: 'too_large' };
  }
  try {
    const verdict = m.inspect ? await m.inspect(capture) : ({ ok: true } as const);
    if (!verdict.ok) {
      await spool.discard(transaction.id);
      return verdict;
    }
    if (verdict.prepend)
      size = await spool.prependToUncommitted(transaction.id, Buffer.from(verdict.prepend, 'latin1'));
    const headers = capture.headers();
    const messageId = headers.value('Message-ID');
    const envelope = spoolEnvelopeOf(m.session, {
      ...transaction,
      size,
      ...(messageId ? { messageId } : {}),
      headers: indicatorHeadersOf(headers),
    });
    await spool.commit(envelope);
    return { ok: true, envelope };
  } catch (cause) {
    await spool.discard(transaction.id);
    return { ok: false, code: 'SPOOL_FAILED', reason: 'spool_failed', cause };
  }
}
