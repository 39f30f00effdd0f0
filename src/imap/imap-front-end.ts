import { randomUUID } from 'node:crypto';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { ClientAuthenticator, SessionIndex } from '../auth/index.js';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import {
  ConnectionGate,
  type ConnectionTicket,
  REFUSAL_DEADLINE_MS,
  REFUSAL_HANDSHAKES,
  type RefusalReplyOutcome,
  TlsRefusals,
} from '../shared/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import { type ImapListenerName, type ImapObserver, NOOP_IMAP_OBSERVER } from './imap-observer.js';
import { ImapSession } from './imap-session.js';
import type { StoreAccess } from './login-flow.js';
import { untaggedLine } from './responses.js';
import {
  type ImapTlsMaterial,
  StartTlsUpgrader,
  abortHandshake,
  discardFailedHandshake,
  handshakeDetail,
  imapContextOptions,
  imapServerOptions,
  peerKey,
  secured,
} from './tls-upgrade.js';

export interface ImapFrontEndDeps {
  readonly config: Config['imap'];
  /** Current trust material and TLS profile; read again by `reloadTrust`. */
  readonly tls: () => ImapTlsMaterial;
  readonly authenticator: ClientAuthenticator;
  /** The store's plain IMAP endpoint and the master credentials. */
  readonly store: StoreAccess;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly observer?: ImapObserver;
  readonly clock: Clock;
  /** How long `close()` lets piped sessions end by themselves before cutting them. Default 10 s. */
  readonly shutdownGraceMs?: number;
  /** Budget for the store's greeting and master login. Default 10 s. */
  readonly storeTimeoutMs?: number;
  /** Open sessions, re-checked when rights change (session-watch.ts). */
  readonly sessions?: SessionIndex;
  /** What became of a refusal on the implicit-TLS port (BYE sent, closed over budget, failed). */
  readonly onRefusalReply?: (outcome: RefusalReplyOutcome) => void;
}

export interface ImapAddresses {
  readonly starttls: AddressInfo;
  readonly implicit: AddressInfo;
}

/**
 * The IMAP front end (ARCHITECTURE.md §3 imap/, §5 "IMAP"): two listeners — STARTTLS (143 in
 * production) and implicit TLS (993, RFC 8314 §3.3) — sharing one connection limit. Each connection
 * is an ImapSession; this class owns accepting, the TLS context and shutdown.
 */
export class ImapFrontEnd {
  readonly #d: ImapFrontEndDeps;
  readonly #observer: ImapObserver;
  readonly #plain: net.Server;
  readonly #implicit: tls.Server;
  readonly #upgrader: StartTlsUpgrader;
  readonly #sessions = new Set<ImapSession>();
  /** Implicit-TLS connections still in their handshake, by peer: they count against the limit. */
  readonly #handshaking = new Map<string, { raw: net.Socket; ticket: ConnectionTicket }>();
  /** Total and per-source limits, shared by both ports. */
  readonly #gate: ConnectionGate;
  /** Refusals on the implicit-TLS port: a handshake and a BYE, a few at a time. */
  readonly #refusals: TlsRefusals;
  /** The refusals' TLS context, made at the first refusal after a (re)load of the trust material. */
  #refusalContext: tls.SecureContext | undefined;
  #closing: Promise<void> | undefined;

  constructor(deps: ImapFrontEndDeps) {
    this.#d = deps;
    this.#observer = deps.observer ?? NOOP_IMAP_OBSERVER;
    this.#gate = new ConnectionGate(deps.config);
    const options = imapServerOptions(deps.tls(), deps.config.preauthTimeoutSeconds * 1000);
    this.#upgrader = new StartTlsUpgrader(options);
    // Half-open: when a client ends its side, what the store still sends reaches it.
    this.#plain = net.createServer({ allowHalfOpen: true }, (socket) => this.#acceptPlain(socket));
    this.#implicit = tls.createServer(options, (socket) => this.#acceptImplicit(socket));
    // Every accepted socket passes the gate before the TLS server wraps it: a refused one is then
    // the gate's alone (closed, or handed to the refusal responder, which wraps it itself), and
    // nothing ever has to destroy a raw socket under a TLSSocket.
    const wrap = this.#implicit.listeners('connection') as Array<(raw: net.Socket) => void>;
    this.#implicit.removeAllListeners('connection');
    this.#implicit.on('connection', (raw: net.Socket) => {
      if (this.#handshakeStarted(raw)) for (const handler of wrap) handler.call(this.#implicit, raw);
    });
    this.#refusals = new TlsRefusals({
      budget: REFUSAL_HANDSHAKES,
      deadlineMs: REFUSAL_DEADLINE_MS,
      secureContext: () => (this.#refusalContext ??= tls.createSecureContext(imapContextOptions(deps.tls()))),
      ...(deps.onRefusalReply ? { onOutcome: deps.onRefusalReply } : {}),
    });
    // Accept errors (EMFILE, ...) after listen: logged, never fatal to the process.
    for (const [name, server] of [
      ['starttls', this.#plain],
      ['implicit', this.#implicit],
    ] as const) {
      server.on('error', (err: Error) => {
        if (server.listening)
          this.#d.logger.error(
            { event: 'imap.listener.error', listener: name, err: err.message },
            'listener error',
          );
      });
    }
    this.#implicit.on('tlsClientError', (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      this.#handshaking.delete(peerKey(socket));
      discardFailedHandshake(socket);
      this.#observer.tlsHandshake(
        'implicit',
        'failed',
        handshakeDetail({ ok: false, reason: err.code ?? 'error' }),
      );
    });
  }

  /** Connections open now (sessions and implicit-TLS handshakes). */
  get connections(): number {
    return this.#gate.size;
  }

  /** Listens on both ports; a port that cannot be bound is reported with its setting's key. */
  async listen(): Promise<ImapAddresses> {
    const { host, port, tlsPort } = this.#d.config;
    const starttls = await listenOn(this.#plain, host, port, 'imap.port');
    try {
      const implicit = await listenOn(this.#implicit, host, tlsPort, 'imap.tlsPort');
      this.#d.logger.info({ event: 'imap.listening', starttls, implicit }, 'IMAP listening');
      return { starttls, implicit };
    } catch (err) {
      this.#plain.close();
      throw err;
    }
  }

  /** New connections use the current trust material (certificate, authorities, CRLs). */
  reloadTrust(): void {
    const options = imapContextOptions(this.#d.tls());
    this.#implicit.setSecureContext(options);
    this.#upgrader.setSecureContext(options);
    this.#refusalContext = undefined;
  }

  /**
   * Stops accepting, says BYE to sessions before login, lets piped sessions end by themselves for the
   * grace period and then cuts them. Resolves once every connection is closed.
   */
  close(): Promise<void> {
    this.#closing ??= this.#shutdown();
    return this.#closing;
  }

  async #shutdown(): Promise<void> {
    const grace = this.#d.shutdownGraceMs ?? 10_000;
    this.#gate.close();
    this.#refusals.close();
    const stopped = [this.#plain, this.#implicit].map(
      (server) =>
        new Promise<void>((resolve) => (server.listening ? server.close(() => resolve()) : resolve())),
    );
    for (const { raw } of [...this.#handshaking.values()]) abortHandshake(raw);
    for (const session of this.#sessions) session.shutdown(grace);
    await Promise.all([...stopped, ...[...this.#sessions].map((s) => s.closed)]);
    this.#d.logger.info({ event: 'imap.stopped' }, 'IMAP stopped');
  }

  /**
   * Every accepted socket passes the gate (total, and per source before login), before any TLS work.
   * A refusal is a BYE (RFC 9051 §7.1.5); on the TLS port it needs a handshake first, which the
   * refusal responder makes for a few at a time and under a short deadline (beyond that the socket
   * is just closed). The ticket is given back when it closes.
   */
  #admit(raw: net.Socket, listener: ImapListenerName): ConnectionTicket | undefined {
    raw.on('error', () => {});
    const admission = this.#gate.admit(raw.remoteAddress);
    if (admission.ok) {
      raw.once('close', () => admission.ticket.release());
      return admission.ticket;
    }
    const { reason } = admission;
    this.#observer.connectionRefused(listener, reason);
    const text =
      reason === 'shutting-down'
        ? 'Server shutting down'
        : reason === 'max-per-source'
          ? 'Too many connections from your address, try again later'
          : 'Too many connections, try again later';
    const bye = untaggedLine('BYE', text, 'UNAVAILABLE');
    if (listener === 'implicit') {
      this.#refusals.refuse(raw, bye);
      return undefined;
    }
    raw.end(bye);
    // A client that does not read its BYE does not keep the socket.
    setTimeout(() => raw.destroy(), 2_000).unref();
    return undefined;
  }

  /** A raw connection on the implicit-TLS port, before tls.Server wraps it: true when admitted. */
  #handshakeStarted(raw: net.Socket): boolean {
    const ticket = this.#admit(raw, 'implicit');
    if (!ticket) return false;
    const key = peerKey(raw);
    this.#handshaking.set(key, { raw, ticket });
    raw.once('close', () => {
      if (this.#handshaking.get(key)?.raw === raw) this.#handshaking.delete(key);
    });
    return true;
  }

  #acceptImplicit(socket: tls.TLSSocket): void {
    const key = peerKey(socket);
    const handshaking = this.#handshaking.get(key);
    this.#handshaking.delete(key);
    secured(socket);
    this.#observer.tlsHandshake('implicit', 'ok', socket.isSessionReused() ? 'resumed' : 'full');
    if (!handshaking || this.#closing !== undefined) {
      this.#observer.connectionRefused('implicit', 'shutting-down');
      socket.on('error', () => {});
      socket.end(untaggedLine('BYE', 'Server shutting down', 'UNAVAILABLE'));
      socket.destroySoon();
      return;
    }
    this.#accept(socket, 'implicit', handshaking.ticket);
  }

  #acceptPlain(socket: net.Socket): void {
    const ticket = this.#admit(socket, 'starttls');
    if (ticket) this.#accept(socket, 'starttls', ticket);
  }

  #accept(socket: net.Socket, listener: ImapListenerName, ticket: ConnectionTicket): void {
    socket.setNoDelay(true);
    const cid = randomUUID().slice(0, 8);
    const log = this.#d.logger.child({ cid, remote: socket.remoteAddress, listener });
    const c = this.#d.config;
    const session = new ImapSession(
      socket,
      listener,
      {
        limits: { maxLineBytes: c.maxLineBytes, maxLiteralBytes: c.maxLiteralBytes },
        preauthTimeoutMs: c.preauthTimeoutSeconds * 1000,
        idleTimeoutMs: c.idleTimeoutSeconds * 1000,
        maxSessionMs: c.maxSessionSeconds * 1000,
        storeTimeoutMs: this.#d.storeTimeoutMs ?? 10_000,
        authenticator: this.#d.authenticator,
        store: this.#d.store,
        startTls: (raw) => this.#upgrader.upgrade(raw),
        abortStartTls: (raw) => this.#upgrader.abort(raw),
        clock: this.#d.clock,
        journal: this.#d.journal,
        observer: this.#observer,
        ...(this.#d.sessions ? { sessions: this.#d.sessions } : {}),
      },
      log,
      // Logged in: it no longer counts against its address's pre-login quota.
      () => ticket.authenticated(),
    );
    this.#sessions.add(session);
    this.#observer.connectionOpened(listener);
    log.debug({ event: 'imap.connection.opened' }, 'connection');
    void session.closed.then(() => {
      // The session's end gives the place back too (idempotent), whatever became of the accepted
      // socket under a TLS upgrade (the SMTP listeners lost places that way).
      ticket.release();
      this.#sessions.delete(session);
      this.#observer.connectionClosed(listener, session.wasProxied ? 'proxied' : 'preauth');
    });
    session.run().catch((err: unknown) => {
      log.error({ event: 'imap.session.crashed', err: String(err) }, 'session failed');
      socket.destroy();
    });
  }
}

function listenOn(server: net.Server, host: string, port: number, key: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(
        new GatewayError(
          'CONFIG_INVALID',
          `cannot listen on ${host}:${port} (${key}): ${err.code ?? err.message}`,
          { key },
          { cause: err },
        ),
      );
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      resolve(server.address() as AddressInfo);
    });
  });
}
