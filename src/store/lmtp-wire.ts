import type { Socket } from 'node:net';
import { GatewayError } from '../errors/index.js';
import { ReplyReader, type WireFailureKind, type WireReply } from '../shared/index.js';

/**
 * The LMTP client's failures over the wire layer it shares with the relay (shared/smtp-wire.ts):
 * the reply reader and the DATA encoder are the same bytes for both.
 */

export type LmtpReply = WireReply;

/** Why a session ended early; picks the enhanced code of the synthesised temporary results. */
export type LmtpFailureKind = 'connect' | 'timeout' | 'closed' | 'protocol';

export class LmtpConnectionError extends GatewayError {
  readonly kind: LmtpFailureKind;
  constructor(kind: LmtpFailureKind, message: string, options?: ErrorOptions) {
    super('STORE_UNAVAILABLE', message, { kind }, options);
    this.name = 'LmtpConnectionError';
    this.kind = kind;
  }
}

const KIND: Record<WireFailureKind, LmtpFailureKind> = {
  connect: 'connect',
  broken: 'closed',
  closed: 'closed',
  protocol: 'protocol',
};

/** A reply reader on a connection to the store, failing with LmtpConnectionError. */
export function lmtpReplyReader(socket: Socket): ReplyReader {
  return new ReplyReader(socket, (kind, detail, cause) => {
    const message =
      kind === 'closed'
        ? 'connection closed by the store'
        : kind === 'protocol'
          ? `malformed reply: ${detail.slice(0, 80)}`
          : detail;
    return new LmtpConnectionError(KIND[kind], message, cause ? { cause } : undefined);
  });
}
