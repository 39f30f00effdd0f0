import type net from 'node:net';
import tls from 'node:tls';

/** What became of a refusal on an implicit-TLS listener (a bounded metric label). */
export type RefusalReplyOutcome =
  /** The handshake completed and the refusal line was sent. */
  | 'sent'
  /** Too many refusal handshakes in flight (or none possible): the socket was just closed. */
  | 'over-budget'
  /** The client did not complete the handshake in time, or it failed. */
  | 'failed';

export interface TlsRefusalsOptions {
  /** Refusal handshakes in flight at once; beyond it a refused socket is closed without a word. */
  readonly budget: number;
  /** Handshake and reply together, from accept to close. */
  readonly deadlineMs: number;
  /** The listener's current context (certificate, TLS profile: renegotiation refused). */
  readonly secureContext: () => tls.SecureContext | undefined;
  readonly onOutcome?: (outcome: RefusalReplyOutcome) => void;
}

/** Default budget: a flood costs at most this many handshakes per deadline per listener. */
export const REFUSAL_HANDSHAKES = 16;
export const REFUSAL_DEADLINE_MS = 3_000;

/**
 * Refusals that a client understands on an implicit-TLS port (issue #11): nothing can be said before
 * the handshake, so a refused connection used to be closed at TCP level and a client saw a reset,
 * not `421 4.7.0` or `* BYE [UNAVAILABLE]`. Here the handshake is completed under a short deadline
 * and the line is sent; since a handshake is the expensive part, only `budget` of them run at once
 * and any refusal beyond is closed at once (counted as `over-budget`), so a flood costs a bounded
 * number of handshakes. The raw socket must not have been given to a TLS server: it is wrapped here,
 * and only the TLSSocket is ever destroyed (tearing a TLS wrap down from below is what crashed
 * SMTP's guard).
 */
export class TlsRefusals {
  readonly #o: TlsRefusalsOptions;
  readonly #inFlight = new Set<tls.TLSSocket>();
  #closed = false;

  constructor(options: TlsRefusalsOptions) {
    this.#o = options;
  }

  /** Refusal handshakes in flight now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Refuses `raw` with `line` (CRLF included) when the budget allows, else closes it at once. */
  refuse(raw: net.Socket, line: string): void {
    raw.on('error', () => {});
    const context =
      this.#closed || this.#inFlight.size >= this.#o.budget ? undefined : this.#o.secureContext();
    if (context === undefined || raw.destroyed) {
      raw.destroy();
      this.#o.onOutcome?.('over-budget');
      return;
    }
    // The default: a client's FIN during the handshake ends the connection.
    raw.allowHalfOpen = false;
    const socket = new tls.TLSSocket(raw, { isServer: true, secureContext: context });
    this.#inFlight.add(socket);
    let sent = false;
    // A handshake failure destroys the socket itself; the error is only reported.
    socket.on('error', () => {});
    const deadline = setTimeout(() => socket.destroy(), this.#o.deadlineMs);
    deadline.unref();
    // The TLSSocket's own handshake-complete event (tls.Server's `secureConnection` comes from it).
    socket.once('secure', () => {
      sent = true;
      socket.end(line);
      this.#o.onOutcome?.('sent');
    });
    socket.once('close', () => {
      clearTimeout(deadline);
      this.#inFlight.delete(socket);
      if (!sent) this.#o.onOutcome?.('failed');
    });
  }

  /** The listener stops: refusals in flight are cut, later ones closed at once. */
  close(): void {
    this.#closed = true;
    for (const socket of this.#inFlight) socket.destroy();
  }
}
