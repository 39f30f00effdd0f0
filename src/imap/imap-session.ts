import type net from 'node:net';
import tls from 'node:tls';
import type { ClientAuthenticator, CutReason, SaslMechanism, SessionIndex, TlsFacts } from '../auth/index.js';
import type { Clock } from '../shared/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import { preauthCapabilities, preauthMechanisms } from './capabilities.js';
import type { CommandFrame, CommandLimits, FrameEvent } from './command-framer.js';
import { parseCommand, readTag } from './command-syntax.js';
import { ConnectionInput, drained } from './connection-input.js';
import type { ImapListenerName, ImapObserver, ImapProtocolError } from './imap-observer.js';
import { type LoginPort, authenticateCommand, loginCommand } from './login-commands.js';
import type { LoginResult, StoreAccess } from './login-flow.js';
import { type PreauthCommand, decodePreauthCommand } from './preauth-commands.js';
import { type ImapResponseCode, taggedLine, untaggedLine } from './responses.js';
import type { SaslIo } from './sasl-exchange.js';
import { startProxy } from './proxied-session.js';
import type { StorePipe } from './store-pipe.js';
import { type HandshakeResult, handshakeDetail, tlsFactsOf } from './tls-upgrade.js';

/** Everything a session needs, shared by all sessions of the front end. */
export interface SessionDeps {
  readonly limits: CommandLimits;
  readonly preauthTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly maxSessionMs: number;
  readonly storeTimeoutMs: number;
  readonly authenticator: ClientAuthenticator;
  readonly store: StoreAccess;
  /** Runs the server side of the TLS handshake after STARTTLS. */
  readonly startTls: (socket: net.Socket) => Promise<HandshakeResult>;
  /** Ends a STARTTLS handshake still running from the TLS side; false when none is. */
  readonly abortStartTls?: (socket: net.Socket) => boolean;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly observer: ImapObserver;
  /** Open sessions, re-checked when rights change: a session whose right is gone gets BYE. */
  readonly sessions?: SessionIndex;
}

/** The connection as the client sees it: the socket, its command input and what TLS proved. */
interface Transport {
  readonly socket: net.Socket;
  readonly input: ConnectionInput;
  readonly tls: TlsFacts;
  readonly tlsInfo?: { readonly protocol: string; readonly cipher: string };
}

/**
 * Session state (STYLE.md: a tagged union whose variants carry only what is valid in them).
 * `preauth`: commands answered by the gateway; `upgrading`: STARTTLS handshake running; `proxying`:
 * bytes piped to the store; `closed`: nothing more is written.
 */
type SessionState =
  | { readonly phase: 'preauth'; readonly transport: Transport }
  | { readonly phase: 'upgrading'; readonly socket: net.Socket }
  | { readonly phase: 'proxying'; readonly pipe: StorePipe }
  | { readonly phase: 'closed' };

type Next = 'continue' | 'stop' | { readonly upgraded: Transport };

const GREETING = 'MSSante operator gateway ready';
/** The BYE of a session whose right went away (RFC 5530 codes: EXPIRED, AUTHORIZATIONFAILED). */
const CUT_CODE: Record<CutReason, ImapResponseCode> = {
  right_expired: 'EXPIRED',
  right_revoked: 'AUTHORIZATIONFAILED',
  mailbox_suspended: 'AUTHORIZATIONFAILED',
  mailbox_deleted: 'AUTHORIZATIONFAILED',
  secret_removed: 'AUTHENTICATIONFAILED',
  secret_replaced: 'AUTHENTICATIONFAILED',
};
const CUT_TEXT: Record<CutReason, string> = {
  right_expired: 'Your right on this mailbox has expired',
  right_revoked: 'Your right on this mailbox was revoked',
  mailbox_suspended: 'This mailbox was suspended',
  mailbox_deleted: 'This mailbox was deleted',
  secret_removed: 'The secret you logged in with was removed',
  secret_replaced: 'The secret you logged in with was replaced',
};
/** Like Dovecot's login processes: a client that keeps sending nonsense or failing is let go. */
const MAX_BAD_COMMANDS = 10;
const MAX_FAILED_LOGINS = 3;
const TOO_BIG_TEXT = {
  line: 'Line too long',
  literal: 'Literal too long',
  command: 'Command too long',
} as const;
const TOO_BIG_KIND = {
  line: 'line-too-long',
  literal: 'literal-too-large',
  command: 'command-too-large',
} as const satisfies Record<string, ImapProtocolError>;

/**
 * One client connection (ARCHITECTURE.md §3 imap/): greeting, pre-authentication commands, then the
 * store session. Commands are read and executed one at a time (pipelining keeps its order).
 */
export class ImapSession {
  readonly listener: ImapListenerName;
  readonly remote: string;
  /** Resolves once the connection is over (both sockets closed when it was piped). */
  readonly closed: Promise<void>;
  readonly #d: SessionDeps;
  readonly #log: Logger;
  #state: SessionState;
  #preauthTimer: NodeJS.Timeout | undefined;
  #wasProxied = false;
  #badCommands = 0;
  #failedLogins = 0;
  #resolveClosed!: () => void;
  readonly #onLoggedIn: () => void;

  constructor(
    socket: net.Socket,
    listener: ImapListenerName,
    deps: SessionDeps,
    log: Logger,
    onLoggedIn: () => void = () => {},
  ) {
    this.#d = deps;
    this.#onLoggedIn = onLoggedIn;
    this.listener = listener;
    this.remote = socket.remoteAddress ?? 'unknown';
    this.#log = log;
    const secure = socket instanceof tls.TLSSocket ? tlsFactsOf(socket) : { tls: insecure() };
    const transport: Transport = { socket, input: new ConnectionInput(socket, deps.limits), ...secure };
    this.#state = { phase: 'preauth', transport };
    this.closed = new Promise((resolve) => (this.#resolveClosed = resolve));
    this.#watch(socket);
    socket.on('error', (err) =>
      this.#log.debug({ event: 'imap.socket.error', err: err.message }, 'socket error'),
    );
  }

  /** Whether the session reached the store (for the phase label of the closed connection). */
  get wasProxied(): boolean {
    return this.#wasProxied;
  }

  /** Greets and runs the session until it is piped to the store or closed. */
  async run(): Promise<void> {
    if (this.#state.phase !== 'preauth') return;
    let transport: Transport | undefined = this.#state.transport;
    this.#preauthTimer = setTimeout(() => this.#preauthTimeout(), this.#d.preauthTimeoutMs);
    const caps = this.#capabilities(transport);
    this.#send(transport, untaggedLine('OK', GREETING, `CAPABILITY ${caps}`));
    while (transport) transport = await this.#commandLoop(transport);
  }

  /** Shutdown: BYE before login; a piped session is given `graceMs` to end by itself. */
  shutdown(graceMs: number): void {
    const state = this.#state;
    switch (state.phase) {
      case 'preauth':
        this.#bye(state.transport, 'Server shutting down');
        return;
      case 'upgrading':
        this.#close(state.socket);
        return;
      case 'proxying':
        setTimeout(() => state.pipe.shutdown(), graceMs).unref();
        return;
      case 'closed':
        return;
    }
  }

  async #commandLoop(t: Transport): Promise<Transport | undefined> {
    for (;;) {
      // A client that does not read its responses gets no more of them: stop reading until it does.
      if (t.socket.writableNeedDrain) await drained(t.socket);
      const event = await t.input.nextCommand();
      if (this.#state.phase !== 'preauth' || this.#state.transport !== t) return undefined;
      if (event === undefined) return this.#close();
      const next = await this.#onEvent(t, event);
      if (next === 'stop') return undefined;
      if (next !== 'continue') return next.upgraded;
    }
  }

  async #onEvent(t: Transport, event: FrameEvent): Promise<Next> {
    switch (event.kind) {
      case 'continue':
        // RFC 9051 §7.5: the client waits for this before sending a synchronising literal.
        this.#send(t, '+ Ready for literal data\r\n');
        return 'continue';
      case 'too-big': {
        // RFC 9051 §7.1: TOOBIG; the rest of the command cannot be skipped safely, so the connection ends.
        this.#d.observer.protocolError(TOO_BIG_KIND[event.what]);
        const tag = readTag(event.head, true);
        const text = TOO_BIG_TEXT[event.what];
        this.#send(t, tag ? taggedLine(tag, 'BAD', text, 'TOOBIG') : untaggedLine('BAD', text, 'TOOBIG'));
        this.#bye(t, 'Too much data before login');
        return 'stop';
      }
      case 'frame':
        return this.#onFrame(t, event.frame);
    }
  }

  async #onFrame(t: Transport, frame: CommandFrame): Promise<Next> {
    const syntax = parseCommand(frame);
    if (!syntax.ok) {
      return this.#badCommand(
        t,
        syntax.tag ? taggedLine(syntax.tag, 'BAD', syntax.text) : untaggedLine('BAD', syntax.text),
      );
    }
    const { tag } = syntax.command;
    const decoded = decodePreauthCommand(syntax.command);
    if (!decoded.ok) return this.#badCommand(t, taggedLine(tag, 'BAD', decoded.text));
    return this.#execute(t, tag, decoded.command);
  }

  #badCommand(t: Transport, reply: string): Next {
    this.#d.observer.protocolError('syntax');
    this.#send(t, reply);
    if (++this.#badCommands < MAX_BAD_COMMANDS) return 'continue';
    this.#d.observer.protocolError('too-many-errors');
    this.#bye(t, 'Too many invalid commands');
    return 'stop';
  }

  async #execute(t: Transport, tag: string, command: PreauthCommand): Promise<Next> {
    switch (command.name) {
      case 'CAPABILITY':
        this.#send(
          t,
          `* CAPABILITY ${this.#capabilities(t)}\r\n${taggedLine(tag, 'OK', 'CAPABILITY completed')}`,
        );
        return 'continue';
      case 'NOOP':
        this.#send(t, taggedLine(tag, 'OK', 'NOOP completed'));
        return 'continue';
      case 'ID':
        // RFC 2971 §3.1: our own identification; what the client sent is never passed on.
        this.#send(t, `* ID ("name" "mssgw")\r\n${taggedLine(tag, 'OK', 'ID completed')}`);
        return 'continue';
      case 'LOGOUT':
        this.#send(t, untaggedLine('BYE', 'Logging out') + taggedLine(tag, 'OK', 'LOGOUT completed'));
        this.#close();
        return 'stop';
      case 'STARTTLS':
        return this.#startTls(t, tag);
      case 'AUTHENTICATE': {
        const { mechanism, initialResponse } = command;
        return this.#afterLogin(
          t,
          await authenticateCommand(this.#loginPort(t), tag, mechanism, initialResponse),
        );
      }
      case 'LOGIN':
        return this.#afterLogin(
          t,
          await loginCommand(this.#loginPort(t), tag, command.user, command.password),
        );
    }
  }

  #mechanisms(t: Transport): readonly SaslMechanism[] {
    return preauthMechanisms(t.tls, this.#d.authenticator.mechanisms(t.tls));
  }

  #capabilities(t: Transport): string {
    return preauthCapabilities(t.tls, this.#mechanisms(t));
  }

  /** RFC 9051 §6.2.1; RFC 3207-style injection defence: bytes after the command are discarded. */
  async #startTls(t: Transport, tag: string): Promise<Next> {
    if (t.tls.secure) {
      this.#send(t, taggedLine(tag, 'BAD', 'TLS is already active'));
      return 'continue';
    }
    const discarded = t.input.detach();
    if (discarded.length > 0) {
      this.#log.warn(
        { event: 'imap.starttls.injection', bytes: discarded.length },
        'plaintext after STARTTLS discarded',
      );
    }
    this.#state = { phase: 'upgrading', socket: t.socket };
    await new Promise<void>((resolve) =>
      t.socket.write(taggedLine(tag, 'OK', 'Begin TLS negotiation now'), () => resolve()),
    );
    const result = await this.#d.startTls(t.socket);
    this.#d.observer.tlsHandshake(this.listener, result.ok ? 'ok' : 'failed', handshakeDetail(result));
    if (!result.ok || this.#state.phase !== 'upgrading') {
      if (result.ok) result.socket.destroy();
      else this.#log.info({ event: 'imap.tls.failed', reason: result.reason }, 'STARTTLS handshake failed');
      this.#close(t.socket);
      return 'stop';
    }
    const secured = result.socket;
    const upgraded: Transport = {
      socket: secured,
      input: new ConnectionInput(secured, this.#d.limits),
      ...tlsFactsOf(secured),
    };
    this.#state = { phase: 'preauth', transport: upgraded };
    this.#watch(secured);
    return { upgraded };
  }

  #saslIo(t: Transport): SaslIo {
    return {
      challenge: (text) => this.#send(t, `+ ${text}\r\n`),
      response: async () => {
        const event = await t.input.nextLine();
        if (event?.kind === 'line') return event.line.toString('latin1');
        if (event?.kind === 'too-big') {
          this.#d.observer.protocolError('line-too-long');
          this.#send(t, untaggedLine('BAD', 'Line too long', 'TOOBIG'));
          this.#bye(t, 'Too much data before login');
        }
        return undefined;
      },
    };
  }

  #loginPort(t: Transport): LoginPort {
    return {
      ...this.#d,
      tls: t.tls,
      remote: this.remote,
      mechanisms: this.#mechanisms(t),
      sasl: this.#saslIo(t),
      log: this.#log,
      connection: { remote: this.remote, listener: this.listener, ...(t.tlsInfo ? { tls: t.tlsInfo } : {}) },
      send: (line) => this.#send(t, line),
      isOpen: () => this.#isCurrent(t),
    };
  }

  #afterLogin(t: Transport, result: LoginResult): Next {
    switch (result.kind) {
      case 'refused':
        if (++this.#failedLogins < MAX_FAILED_LOGINS) return 'continue';
        this.#d.observer.protocolError('too-many-errors');
        this.#bye(t, 'Too many failed logins');
        return 'stop';
      case 'closed':
        if (this.#isCurrent(t)) this.#close(t.socket);
        return 'stop';
      case 'logged-in': {
        clearTimeout(this.#preauthTimer);
        this.#onLoggedIn();
        const context = {
          ...this.#d,
          log: this.#log,
          connection: { remote: this.remote, listener: this.listener },
        };
        const { pipe, finished } = startProxy(
          context,
          t.socket,
          t.input.detach(),
          result.store,
          result.access.bal,
        );
        this.#state = { phase: 'proxying', pipe };
        this.#wasProxied = true;
        const watched = this.#d.sessions?.open({
          channel: 'imap',
          access: result.access,
          remote: this.remote,
          onCut: (reason) => pipe.cut(untaggedLine('BYE', CUT_TEXT[reason], CUT_CODE[reason])),
        });
        void finished.then(() => {
          watched?.close();
          this.#state = { phase: 'closed' };
          this.#resolveClosed();
        });
        return 'stop';
      }
    }
  }

  #isCurrent(t: Transport): boolean {
    return this.#state.phase === 'preauth' && this.#state.transport === t;
  }

  #preauthTimeout(): void {
    const state = this.#state;
    this.#d.observer.protocolError('preauth-timeout');
    if (state.phase === 'preauth') this.#bye(state.transport, 'Autologout; no login in time');
    else if (state.phase === 'upgrading') this.#close(state.socket);
  }

  /** The connection is over when the socket in use closes (the pipe decides once proxying). */
  #watch(socket: net.Socket): void {
    socket.once('close', () => {
      const state = this.#state;
      if (state.phase === 'proxying') return;
      if (state.phase === 'preauth' && state.transport.socket !== socket) return;
      if (state.phase === 'upgrading' && state.socket !== socket) return;
      this.#state = { phase: 'closed' };
      clearTimeout(this.#preauthTimer);
      this.#resolveClosed();
    });
  }

  #send(t: Transport, text: string): void {
    if (this.#state.phase === 'closed' || t.socket.destroyed) return;
    t.socket.write(text);
  }

  /** RFC 9051 §7.1.5: BYE, then the connection closes. */
  #bye(t: Transport, text: string): void {
    this.#send(t, untaggedLine('BYE', text));
    this.#close(t.socket);
  }

  #close(socket?: net.Socket): undefined {
    const state = this.#state;
    const target = socket ?? (state.phase === 'preauth' ? state.transport.socket : undefined);
    this.#state = { phase: 'closed' };
    clearTimeout(this.#preauthTimer);
    // A socket a TLS server has wrapped is never destroyed from below (tls-upgrade.ts abortHandshake).
    if (target && state.phase === 'upgrading' && this.#d.abortStartTls?.(target)) return undefined;
    if (target) {
      target.destroySoon();
      // A client that does not read must not keep the socket: give the BYE a few seconds.
      setTimeout(() => target.destroy(), 5_000).unref();
    }
    return undefined;
  }
}

function insecure(): TlsFacts {
  return { secure: false, authorized: false };
}
