import type { Socket } from 'node:net';
import { ReplyReader, type WireReply } from '../shared/index.js';
import { RelayError } from './relay-error.js';

/** One SMTP reply (RFC 5321 §4.2), as the wire layer shared with local delivery reads it. */
export type SmtpReply = WireReply;
export type SmtpReplyReader = ReplyReader;

/**
 * A reply reader on a connection to a remote MX (the one reader of shared/smtp-wire.ts), failing
 * with RelayError: a socket error is `connect_failed`, a close or a line that is no reply is
 * `protocol_error` with what was seen.
 */
export function relayReplyReader(socket: Socket): ReplyReader {
  return new ReplyReader(socket, (kind, detail, cause) =>
    kind === 'connect' || kind === 'broken'
      ? new RelayError('connect_failed', {}, cause ? { cause } : undefined)
      : new RelayError('protocol_error', { reply: detail }),
  );
}
