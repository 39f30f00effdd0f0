import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Spool, SpoolEnvelope } from '../delivery/index.js';
import type { ErrorCode } from '../errors/index.js';
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
  /** Aborted when the connection closes before the message is complete. */
  readonly signal?: AbortSignal;
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
  // smtp-server destroys the data stream when the client goes away mid-message (and the session's
  // own signal says the connection closed, data-flow.ts); the write must then stop at once (its
  // descriptor closed, its temporary file removed), not wait for an end that never comes.
  const aborted = new AbortController();
  const abort = (): void => aborted.abort();
  const onClose = (): void => {
    if (!stream.readableEnded) abort();
  };
  stream.once('close', onClose);
  stream.once('error', abort);
  if (m.signal?.aborted) abort();
  else m.signal?.addEventListener('abort', abort, { once: true });
  // Its errors reach the spool write through its pipeline; this covers the moment before that.
  capture.on('error', () => {});
  stream.pipe(capture);
  let size: number;
  try {
    size = await spool.writeMessage(transaction.id, Buffer.from(m.received, 'latin1'), capture, {
      signal: aborted.signal,
    });
  } catch (cause) {
    stream.resume();
    if (aborted.signal.aborted) return { ok: false, code: 'SPOOL_FAILED', reason: 'client_aborted' };
    return { ok: false, code: 'SPOOL_FAILED', reason: 'spool_failed', cause };
  } finally {
    stream.off('close', onClose);
    m.signal?.removeEventListener('abort', abort);
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
    const messageId = capture.header('Message-ID');
    const envelope = spoolEnvelopeOf(m.session, {
      ...transaction,
      size,
      ...(messageId ? { messageId } : {}),
    });
    await spool.commit(envelope);
    return { ok: true, envelope };
  } catch (cause) {
    await spool.discard(transaction.id);
    return { ok: false, code: 'SPOOL_FAILED', reason: 'spool_failed', cause };
  }
}
