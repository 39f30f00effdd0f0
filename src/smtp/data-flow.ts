import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Clock } from '../shared/index.js';
import type { Spool, SpoolEnvelope } from '../delivery/index.js';
import { type ErrorCode, toGatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { HeaderCapture } from './header-scan.js';
import type { AcceptedTransaction } from './mx-transaction.js';
import { receivedHeader } from './received-header.js';
import type { SmtpHookError } from './replies.js';
import { type HeaderInspection, type ReceiveAbort, spoolIncoming } from './spool-incoming.js';

export interface DataFlowDeps {
  readonly spool: Spool;
  readonly clock: Clock;
  /** Our name in the Received: header. */
  readonly hostname: string;
  readonly onAccepted: (envelope: SpoolEnvelope) => void;
}

/** What one listener knows about a transaction when its DATA starts. */
export interface DataTransaction {
  /** `ESMTPS` (MX) or `ESMTPSA` (submission), for the Received: header (RFC 3848). */
  readonly protocol: 'ESMTPS' | 'ESMTPSA';
  readonly channel: SpoolEnvelope['channel'];
  readonly log: Logger | undefined;
  /** Journal event of a spool failure, e.g. `smtp.mx.spool_error`. */
  readonly spoolErrorEvent: string;
  readonly tls?: { readonly protocol: string; readonly cipher: string };
  /** The peer operator's DN, canonical (pki canonicalDn): the transaction and journal compare it. */
  readonly peerDn?: string;
  /** The same DN as presented (RFC 4514), for the Received: header. */
  readonly presentedDn?: string;
  readonly routeOf?: AcceptedTransaction['routeOf'];
  readonly inspect?: (headers: HeaderCapture) => Promise<HeaderInspection>;
  /** The listener's refusal (metric, journal, log), turned into the reply. */
  readonly refuse: (code: ErrorCode, reason: string, extra: Record<string, unknown>) => SmtpHookError;
  /** The listener's record of an accepted message (metric, journal, log). */
  readonly accepted: (envelope: SpoolEnvelope) => void;
}

/**
 * The one DATA flow of the MX and submission listeners (ARCHITECTURE.md §6): our Received: header on
 * top, the message streamed into the spool and committed, 250 only once it is durable, then handed to
 * delivery. A connection that closes mid-DATA aborts its message at once (`abort`), so that the spool
 * file and its descriptor go with it rather than waiting for a body that will never end.
 */
export class DataFlow {
  readonly #d: DataFlowDeps;
  /** Messages being received, by session id. */
  readonly #inFlight = new Map<string, ReceiveAbort>();

  constructor(deps: DataFlowDeps) {
    this.#d = deps;
  }

  async receive(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    t: DataTransaction,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const now = this.#d.clock.now();
    const id = this.#d.spool.newId(now);
    const rcpts = session.envelope.rcptTo;
    const received = receivedHeader({
      helo: session.hostNameAppearsAs,
      remoteAddress: session.remoteAddress,
      hostname: this.#d.hostname,
      protocol: t.protocol,
      ...(t.tls ? { tlsProtocol: t.tls.protocol, tlsCipher: t.tls.cipher } : {}),
      ...(t.presentedDn ? { peerDn: t.presentedDn } : {}),
      id,
      ...(rcpts.length === 1 ? { recipient: rcpts[0]!.address } : {}),
      date: now,
    });
    const abort: ReceiveAbort = { aborted: false };
    this.#inFlight.set(session.id, abort);
    const outcome = await spoolIncoming({
      spool: this.#d.spool,
      session,
      stream,
      received,
      abort,
      transaction: {
        id,
        now,
        channel: t.channel,
        ...(t.peerDn ? { peerDn: t.peerDn } : {}),
        ...(t.tls ? { tls: t.tls } : {}),
        ...(t.routeOf ? { routeOf: t.routeOf } : {}),
      },
      ...(t.inspect ? { inspect: t.inspect } : {}),
    }).finally(() => this.#inFlight.delete(session.id));
    if (!outcome.ok) {
      if (abort.aborted) return cb(t.refuse('SPOOL_FAILED', 'connection_lost', {}));
      if (outcome.cause) {
        t.log?.error(
          { event: t.spoolErrorEvent, err: toGatewayError(outcome.cause).message },
          'spool failed',
        );
      }
      return cb(t.refuse(outcome.code, outcome.reason, { size: stream.byteLength }));
    }
    t.accepted(outcome.envelope);
    cb(null, `2.0.0 Ok: queued as ${id}`);
    this.#d.onAccepted(outcome.envelope);
  }

  /** The connection is gone: a message it was sending is dropped now (nothing was acknowledged). */
  abort(sessionId: string): void {
    const abort = this.#inFlight.get(sessionId);
    if (!abort || abort.aborted) return;
    abort.aborted = true;
    abort.onAbort?.();
  }
}
