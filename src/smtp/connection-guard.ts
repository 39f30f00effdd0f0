import type net from 'node:net';
import type tls from 'node:tls';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import type { Logger, Metrics } from '../observability/index.js';
import {
  type ConnectionGate,
  type ConnectionTicket,
  REFUSAL_DEADLINE_MS,
  REFUSAL_HANDSHAKES,
  TlsRefusals,
  sourceOf,
} from '../shared/index.js';
import { greetAtOnce } from './greeting.js';

export interface ConnectionGuardOptions {
  /** Metric label: `mx`, `submission`, `submission-tls`. */
  readonly listener: string;
  readonly gate: ConnectionGate;
  /**
   * Implicit TLS: nothing can be written before the handshake, so a refusal completes one (a few at
   * once, under a short deadline) before its `421`; beyond that budget the socket is just closed.
   */
  readonly implicitTls: boolean;
  /** Time from connect until `authenticated` (MX: a trusted certificate; submission: AUTH). */
  readonly deadlineMs: number;
  /** Why the deadline closes the connection: a bounded metric label. */
  readonly deadlineReason: 'pretls-timeout' | 'preauth-timeout';
  /** Our name, in the 421 replies. */
  readonly hostname: string;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

interface Guarded {
  readonly key: string;
  readonly ticket: ConnectionTicket;
  readonly socket: net.Socket;
  timer: NodeJS.Timeout | undefined;
  sessionId?: string;
}

interface ConnectionLike {
  readonly id: string;
  /** The socket the session reads: the TLSSocket on an implicit-TLS listener. */
  readonly _socket?: net.Socket;
  send(code: number, data: string): void;
}

/** smtp-server's own bookkeeping, read (never changed) to find the socket a connection lives on. */
interface ServerInternals {
  readonly connections: Set<ConnectionLike>;
  /** Accepted sockets still in their implicit-TLS handshake: raw socket → the TLSSocket over it. */
  readonly _pendingSockets?: Map<net.Socket, net.Socket>;
  /** The listener's TLS contexts by server name, `*` the default (kept current by updateSecureContext). */
  readonly secureContext?: Map<string, tls.SecureContext>;
}

/** How a connection is matched between the accepted socket and smtp-server's session. */
function peerOf(address: string | undefined, port: number | undefined): string {
  return `${sourceOf(address)}|${port ?? 0}`;
}

/**
 * Bounded, fair resources on an smtp-server listener (issue #11): every accepted socket passes the
 * gate before smtp-server sees it (a refusal costs no session, no TLS and no 100 ms greeting delay),
 * gets `421 4.7.0` when refused, and is closed with `421 4.7.0` if it has not authenticated within
 * the deadline. smtp-server's own `maxClients` stays as a backstop. An admitted connection is
 * greeted at once, without smtp-server's 100 ms early-talker pause (greeting.ts).
 */
export class ConnectionGuard {
  readonly #o: ConnectionGuardOptions;
  readonly #server: SMTPServer;
  /** Accepted sockets until smtp-server's session binds them (a peer's address and port). */
  readonly #byPeer = new Map<string, Guarded>();
  /**
   * Bound connections by session id. A peer's port comes back for its next connection, and
   * smtp-server reports a session's close after the socket's: looked up by address and port, the
   * close of the old session found the new connection, gave its place back early and lifted its
   * deadline (a loaded flood from one address was admitted at twice its quota).
   */
  readonly #bySession = new Map<string, Guarded>();
  readonly #refusals: TlsRefusals | undefined;

  constructor(server: SMTPServer, options: ConnectionGuardOptions) {
    this.#o = options;
    this.#server = server;
    this.#refusals = options.implicitTls
      ? new TlsRefusals({
          budget: REFUSAL_HANDSHAKES,
          deadlineMs: REFUSAL_DEADLINE_MS,
          secureContext: () => (server as unknown as ServerInternals).secureContext?.get('*'),
          onOutcome: (outcome) =>
            options.metrics.connectionRefusalReplies.inc({ listener: options.listener, outcome }),
        })
      : undefined;
    greetAtOnce(server);
    const net = server.server;
    // smtp-server's accept handler runs only for admitted sockets.
    const accept = net.listeners('connection') as Array<(socket: net.Socket) => void>;
    net.removeAllListeners('connection');
    net.on('connection', (socket: net.Socket) => {
      if (this.#admit(socket)) for (const handler of accept) handler.call(net, socket);
    });
  }

  /** The session of an admitted socket: from now on its deadline closes it with a reply. */
  bind(session: SMTPServerSession): void {
    const guarded = this.#byPeer.get(peerOf(session.remoteAddress, session.remotePort));
    if (!guarded) return;
    guarded.sessionId = session.id;
    this.#bySession.set(session.id, guarded);
  }

  /** The connection proved who it is: its deadline is lifted and it leaves its source's quota. */
  authenticated(session: SMTPServerSession): void {
    const guarded = this.#bySession.get(session.id);
    if (!guarded) return;
    clearTimeout(guarded.timer);
    guarded.timer = undefined;
    guarded.ticket.authenticated();
  }

  /**
   * smtp-server closed the session's connection: its place is free. After a STARTTLS upgrade the
   * accepted socket's own 'close' never comes (the TLSSocket took its handle over), so without
   * this every upgraded connection kept its place until the listener refused everyone with
   * "Too many connections" (found by bench/starttls-stall.ts).
   */
  closed(session: SMTPServerSession): void {
    // A session that closed before smtp-server's onConnect (during its reverse look-up) was never
    // bound: its socket, if still unbound under this peer, is this one.
    const unbound = this.#byPeer.get(peerOf(session.remoteAddress, session.remotePort));
    const guarded =
      this.#bySession.get(session.id) ?? (unbound?.sessionId === undefined ? unbound : undefined);
    if (guarded) this.#forget(guarded);
  }

  /** The listener stops: refusal handshakes in flight are cut. */
  close(): void {
    this.#refusals?.close();
  }

  #forget(guarded: Guarded): void {
    clearTimeout(guarded.timer);
    guarded.timer = undefined;
    guarded.ticket.release();
    if (this.#byPeer.get(guarded.key) === guarded) this.#byPeer.delete(guarded.key);
    if (guarded.sessionId !== undefined) this.#bySession.delete(guarded.sessionId);
  }

  #admit(socket: net.Socket): boolean {
    const o = this.#o;
    const admission = o.gate.admit(socket.remoteAddress);
    if (!admission.ok) {
      o.metrics.smtpConnectionsRefused.inc({ listener: o.listener, reason: admission.reason });
      socket.on('error', () => {});
      const text =
        admission.reason === 'shutting-down'
          ? 'Server shutting down'
          : admission.reason === 'max-per-source'
            ? 'Too many connections from your address, try again later'
            : 'Too many connections, try again later';
      const line = `421 4.7.0 ${o.hostname} ${text}\r\n`;
      if (this.#refusals) {
        // smtp-server never saw this socket: no TLS wraps it yet, the responder does.
        this.#refusals.refuse(socket, line);
      } else {
        socket.end(line);
        // A client that does not read its reply does not keep the socket.
        setTimeout(() => socket.destroy(), 2_000).unref();
      }
      return false;
    }
    const key = peerOf(socket.remoteAddress, socket.remotePort);
    const guarded: Guarded = { key, ticket: admission.ticket, socket, timer: undefined };
    guarded.timer = setTimeout(() => this.#expired(guarded), o.deadlineMs);
    guarded.timer.unref();
    this.#byPeer.set(key, guarded);
    socket.once('close', () => this.#forget(guarded));
    return true;
  }

  #expired(guarded: Guarded): void {
    guarded.timer = undefined;
    const o = this.#o;
    o.metrics.smtpConnectionsRefused.inc({ listener: o.listener, reason: o.deadlineReason });
    o.logger.info(
      { event: 'smtp.connection.deadline', listener: o.listener, reason: o.deadlineReason },
      'connection closed: not authenticated in time',
    );
    const server = this.#server as unknown as ServerInternals;
    const connection = [...server.connections].find((c) => c.id === guarded.sessionId);
    const outer = this.#outermost(guarded, connection);
    // send() closes the connection after a 421 (and writes nothing in the middle of a handshake).
    if (connection) connection.send(421, `4.7.0 ${o.hostname} Too slow, closing connection`);
    else outer.destroy();
    // A client that does not read its reply does not keep the socket, nor its place.
    setTimeout(() => {
      outer.destroy();
      this.#forget(guarded);
    }, 2_000).unref();
  }

  /**
   * The socket to close: on an implicit-TLS listener, the TLSSocket smtp-server wrapped over the raw
   * one, never the raw one. Destroying the raw socket tears the TLS wrap down from below: its 'close'
   * reaches smtp-server's handshake handler, which calls `getProtocol()` on a TLSWrap whose SSL is
   * already freed, and Node 20 dereferences NULL there (SIGSEGV in SSL_get_version, the whole
   * process dies). Destroying the TLSSocket closes both in order.
   */
  #outermost(guarded: Guarded, connection: ConnectionLike | undefined): net.Socket {
    if (connection?._socket) return connection._socket;
    const server = this.#server as unknown as ServerInternals;
    return server._pendingSockets?.get(guarded.socket) ?? guarded.socket;
  }
}
