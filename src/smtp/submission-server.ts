import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import type {
  Access,
  AuthOutcome,
  ClientAuthenticator,
  Principal,
  SessionIndex,
  TlsFacts,
  WatchedSession,
} from '../auth/index.js';
import { normalizeDomain, type Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import type { Spool, SpoolEnvelope } from '../delivery/index.js';
import type { WhitelistHolder } from '../directory/index.js';
import { type ErrorCode, toGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import type { TrustMaterial } from '../pki/index.js';
import {
  DELEGATE_HEADER,
  type MailboxStatusView,
  checkEnvelopeSender,
  checkHeaderSenders,
  routeSubmission,
} from '../routing/index.js';
import { adoptEnhancedCodes } from './enhanced-replies.js';
import type { HeaderCapture } from './header-scan.js';
import { type SmtpHookError, smtpError, smtpReplyFor } from './replies.js';
import { type AuthResponse, installSaslExtensions } from './sasl-extensions.js';
import { type RefusalSink, closeSmtp, listenSmtp, lookupLocalRecipient, refuse } from './listener-support.js';
import { baseServerOptions, secureContextOf } from './server-options.js';
import { ConnectionGate } from '../shared/index.js';
import { ConnectionGuard } from './connection-guard.js';
import { DataFlow } from './data-flow.js';
import { type SaslDecoders, addressList, describePrincipal, toAuthRequest } from './submission-auth.js';

const LISTENER = 'submission';

export interface SubmissionServerDeps {
  readonly config: Pick<Config, 'smtp' | 'tls' | 'domains' | 'auth'>;
  readonly trust: () => TrustMaterial;
  readonly whitelist: WhitelistHolder;
  readonly mailboxes: { get(address: string): Promise<MailboxStatusView | null> };
  /** Mailboxes a principal owns, for a delegate's `Sender:`. */
  readonly ownMailboxes: (principal: Principal) => Promise<string[]>;
  readonly authenticator: ClientAuthenticator;
  readonly sasl: SaslDecoders;
  readonly spool: Spool;
  readonly onAccepted: (envelope: SpoolEnvelope) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly metrics: Metrics;
  /** Open sessions, re-checked when rights change (session-watch.ts). */
  readonly sessions?: SessionIndex;
}

interface SessionState {
  readonly log: Logger;
  /** The authenticated session in the index of open sessions. */
  watched?: WatchedSession | undefined;
  tls: TlsFacts;
  cipher?: { protocol: string; cipher: string };
  routes: Map<string, 'local' | 'relay'>;
}

/**
 * SMTP submission for mail clients and LPS software (ARCHITECTURE.md §5 "Submission from a client"):
 * TLS first (STARTTLS on one port, implicit TLS on the other), then SASL; the envelope sender and
 * `From:` must be a mailbox the caller may send from; recipients are our mailboxes, whitelisted
 * domains or patient mailboxes, never anything else.
 */
export class SubmissionServer {
  readonly starttls: SMTPServer;
  readonly implicit: SMTPServer;
  readonly #d: SubmissionServerDeps;
  readonly #domains: ReadonlySet<string>;
  readonly #state = new Map<string, SessionState>();
  readonly #sink: RefusalSink;
  readonly #data: DataFlow;
  /** One limit for both ports. */
  readonly #gate: ConnectionGate;
  readonly #guards: { readonly starttls: ConnectionGuard; readonly implicit: ConnectionGuard };

  constructor(deps: SubmissionServerDeps) {
    installSaslExtensions();
    this.#d = deps;
    this.#data = new DataFlow({ ...deps, hostname: deps.config.smtp.hostname });
    const { submission, hostname } = deps.config.smtp;
    this.#gate = new ConnectionGate(submission);
    this.#domains = new Set(deps.config.domains.map((d) => normalizeDomain(d) ?? d.toLowerCase()));
    this.#sink = {
      listener: LISTENER,
      event: 'smtp.submission.rejected',
      metrics: deps.metrics,
      journal: deps.journal,
    };
    this.starttls = new SMTPServer(this.#options(false));
    this.implicit = new SMTPServer(this.#options(true));
    const guard = (server: SMTPServer, implicitTls: boolean) =>
      new ConnectionGuard(server, {
        listener: implicitTls ? `${LISTENER}-tls` : LISTENER,
        gate: this.#gate,
        implicitTls,
        deadlineMs: submission.preauthTimeoutSeconds * 1000,
        deadlineReason: 'preauth-timeout',
        hostname,
        metrics: deps.metrics,
        logger: deps.logger,
      });
    this.#guards = { starttls: guard(this.starttls, false), implicit: guard(this.implicit, true) };
    for (const s of [this.starttls, this.implicit]) {
      s.on('error', (err: Error) =>
        this.#d.logger.debug({ event: 'smtp.socket_error', listener: LISTENER, err: err.message }, 'error'),
      );
    }
  }

  #options(secure: boolean): ConstructorParameters<typeof SMTPServer>[0] {
    const { smtp } = this.#d.config;
    const trust = this.#d.trust();
    const server = (): SMTPServer => (secure ? this.implicit : this.starttls);
    return {
      ...baseServerOptions({
        config: this.#d.config,
        trust,
        banner: 'MSSante operator gateway (submission)',
        // A client certificate is optional here; when present it serves SASL EXTERNAL.
        sessionIdContext: 'mssgw-submission',
      }),
      secure,
      // Never authentication before TLS (RFC 8314 §3; smtp-server answers 538 before STARTTLS).
      allowInsecureAuth: false,
      authOptional: false,
      // PLAIN and LOGIN only where some mailbox type may use a secret (auth.passwordTypes).
      authMethods: [
        'XOAUTH2',
        'OAUTHBEARER',
        'EXTERNAL',
        ...(this.#d.config.auth.passwordTypes.length > 0 ? ['PLAIN', 'LOGIN'] : []),
      ],
      maxClients: smtp.submission.maxConnections,
      socketTimeout: smtp.submission.socketTimeoutSeconds * 1000,
      onConnect: (session, cb) => {
        adoptEnhancedCodes(server(), session.id);
        this.#guard(secure).bind(session);
        this.#onConnect(session);
        cb();
      },
      onSecure: (socket, session, cb) => {
        this.#onSecure(socket as TLSSocket, session);
        cb();
      },
      onAuth: (auth, session, cb) =>
        void this.#onAuth(auth, session, (err, response) => {
          // Logged in: no longer held to the pre-auth deadline nor to its address's quota.
          if (!err && response?.user !== undefined) this.#guard(secure).authenticated(session);
          cb(err, response);
        }),
      onMailFrom: (address, session, cb) => void this.#onMailFrom(address, session, cb),
      onRcptTo: (address, session, cb) => void this.#onRcptTo(address, session, cb),
      onData: (stream, session, cb) => void this.#onData(stream, session, cb),
      onClose: (session) => {
        this.#guard(secure).closed(session);
        this.#data.abort(session.id);
        this.#state.get(session.id)?.watched?.close();
        if (this.#state.delete(session.id)) this.#d.metrics.smtpActiveConnections.dec({ listener: LISTENER });
      },
    };
  }

  async listen(
    host: string,
    port: number,
    tlsPort: number,
  ): Promise<{ starttls: AddressInfo; implicit: AddressInfo }> {
    return {
      starttls: await listenSmtp(this.starttls, port, host),
      implicit: await listenSmtp(this.implicit, tlsPort, host),
    };
  }

  #guard(secure: boolean): ConnectionGuard {
    return secure ? this.#guards.implicit : this.#guards.starttls;
  }

  close(): Promise<void> {
    this.#gate.close();
    // Stopping costs no new handshakes: refusals from now on are closed at once.
    this.#guards.implicit.close();
    return Promise.all([closeSmtp(this.starttls), closeSmtp(this.implicit)]).then(() => undefined);
  }

  reloadTrust(): void {
    const t = this.#d.trust();
    for (const s of [this.starttls, this.implicit]) s.updateSecureContext(secureContextOf(t));
  }

  #onConnect(session: SMTPServerSession): void {
    // AUTH is neither offered nor accepted before TLS: a client that saw it advertised in clear
    // could send its token in the SASL initial response before any refusal (RFC 8314 §3).
    if (!session.secure)
      (session as SMTPServerSession & { disabledCommands?: string[] }).disabledCommands = ['AUTH'];
    const log = this.#d.logger.child({ cid: session.id, remote: session.remoteAddress, listener: LISTENER });
    this.#state.set(session.id, { log, tls: { secure: false, authorized: false }, routes: new Map() });
    this.#d.metrics.smtpConnections.inc({ listener: LISTENER });
    this.#d.metrics.smtpActiveConnections.inc({ listener: LISTENER });
  }

  #onSecure(socket: TLSSocket, session: SMTPServerSession): void {
    (session as SMTPServerSession & { disabledCommands?: string[] | undefined }).disabledCommands = undefined;
    const st = this.#state.get(session.id);
    if (!st) return;
    const peer = socket.getPeerX509Certificate();
    st.tls = {
      secure: true,
      ...(peer ? { peerCertificate: peer } : {}),
      authorized: socket.authorized,
      ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
    };
    st.cipher = { protocol: socket.getProtocol() ?? 'unknown', cipher: socket.getCipher().name };
    this.#d.metrics.tlsHandshakes.inc({
      listener: LISTENER,
      outcome: 'ok',
      reason: socket.isSessionReused() ? 'resumed' : 'full',
    });
  }

  async #onAuth(
    auth: SMTPServerAuthentication,
    session: SMTPServerSession,
    cb: (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void,
  ): Promise<void> {
    const st = this.#state.get(session.id);
    if (!st) return cb(smtpError('AUTH_CREDENTIALS_INVALID'));
    const req = toAuthRequest(auth, st.tls, session.remoteAddress, this.#d.sasl);
    if ('error' in req) return cb(smtpError(req.error));
    const outcome: AuthOutcome = await this.#d.authenticator.authenticate(req).catch((err: unknown) => {
      st.log.error(
        { event: 'auth.error', err: toGatewayError(err).message },
        'authentication failed unexpectedly',
      );
      return { ok: false, code: 'AUTH_ISSUER_UNAVAILABLE', reason: 'internal' } satisfies AuthOutcome;
    });
    if (outcome.ok) {
      await this.#d.authenticator
        .recordActivity(outcome.access, 'submission')
        .catch((err: unknown) =>
          st.log.warn(
            { event: 'activity.record_failed', err: toGatewayError(err).message },
            'activity not recorded',
          ),
        );
      st.watched?.close();
      st.watched = this.#d.sessions?.open({
        channel: 'submission',
        access: outcome.access,
        remote: session.remoteAddress,
      });
      return cb(null, { user: outcome.access });
    }
    const reply = smtpReplyFor(outcome.code);
    const final = { responseCode: reply.code, message: `${reply.enhanced} ${reply.text}` };
    if (outcome.saslError && (req.mechanism === 'XOAUTH2' || req.mechanism === 'OAUTHBEARER')) {
      // RFC 7628 §3.2.2: the error status goes out as a challenge; the final reply follows.
      (session as SMTPServerSession & { mssgwAuthFailure?: typeof final }).mssgwAuthFailure = final;
      const response: AuthResponse = { data: JSON.parse(outcome.saslError) as unknown, final };
      return cb(null, response as SMTPServerAuthenticationResponse);
    }
    cb(smtpError(outcome.code));
  }

  #access(session: SMTPServerSession): Access | undefined {
    return session.user as Access | undefined;
  }

  #refuse(
    session: SMTPServerSession,
    command: string,
    code: ErrorCode,
    reason: string,
    extra: Record<string, unknown> = {},
  ): SmtpHookError {
    const access = this.#access(session);
    const fields = { bal: access?.bal, right: access?.right, ...extra };
    return refuse(this.#sink, session, this.#state.get(session.id)?.log, { command, code, reason, fields });
  }

  /**
   * The right this session logged in with, checked again (a revocation, the expiry instant, a
   * suspended or deleted mailbox): a refusal naming both identities, or nothing when it holds.
   */
  async #withdrawn(session: SMTPServerSession, command: string): Promise<SmtpHookError | undefined> {
    const access = this.#access(session);
    const cut = await this.#state.get(session.id)?.watched?.check();
    if (!access || cut === undefined) return undefined;
    return this.#refuse(session, command, 'AUTH_NOT_AUTHORISED', cut, {
      principal: describePrincipal(access.principal),
    });
  }

  async #onMailFrom(
    address: SMTPServerAddress,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): Promise<void> {
    const access = this.#access(session);
    if (!access) return cb(this.#refuse(session, 'MAIL', 'AUTH_REQUIRED', 'not_authenticated'));
    const withdrawn = await this.#withdrawn(session, 'MAIL');
    if (withdrawn) return cb(withdrawn);
    const d = checkEnvelopeSender(access, address.address);
    if (!d.ok) return cb(this.#refuse(session, 'MAIL', d.code, d.reason, { from: address.address }));
    this.#d.metrics.smtpCommands.inc({ listener: LISTENER, command: 'MAIL', outcome: 'accepted' });
    cb();
  }

  async #onRcptTo(
    address: SMTPServerAddress,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): Promise<void> {
    const st = this.#state.get(session.id);
    const route = routeSubmission(address.address, this.#domains, this.#d.whitelist.current());
    if (route.kind === 'refuse')
      return cb(this.#refuse(session, 'RCPT', route.code, route.reason, { to: address.address }));
    if (route.kind === 'lookup') {
      const local = await lookupLocalRecipient(this.#d.mailboxes, route.address, st?.log);
      if (local.kind === 'refuse')
        return cb(this.#refuse(session, 'RCPT', local.code, local.reason, { to: address.address }));
    }
    st?.routes.set(route.address, route.kind === 'lookup' ? 'local' : 'relay');
    this.#d.metrics.smtpCommands.inc({
      listener: LISTENER,
      command: 'RCPT',
      outcome: route.kind === 'lookup' ? 'accepted' : route.patient ? 'accepted_patient' : 'accepted_relay',
    });
    cb();
  }

  async #inspect(access: Access, headers: HeaderCapture) {
    const parse = (name: string) => {
      const value = headers.header(name);
      return value === undefined ? undefined : addressList(value);
    };
    // Only the gateway writes it (sender-policy.ts): a client's own would be a forgery.
    if (headers.header(DELEGATE_HEADER) !== undefined) {
      return { ok: false as const, code: 'FROM_NOT_ALLOWED' as const, reason: 'delegate_header' };
    }
    const own = access.right === 'owner' ? [] : await this.#d.ownMailboxes(access.principal);
    const d = checkHeaderSenders(access, { from: parse('From') ?? [], sender: parse('Sender') }, own);
    if (!d.ok) return d;
    if (d.addSender) return { ok: true as const, prepend: `Sender: <${d.addSender}>\r\n` };
    if (d.addDelegate) return { ok: true as const, prepend: `${DELEGATE_HEADER}: ${d.addDelegate}\r\n` };
    return { ok: true as const };
  }

  #onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const st = this.#state.get(session.id);
    const access = this.#access(session);
    if (!st || !access) {
      stream.resume();
      cb(smtpError('AUTH_REQUIRED'));
      return Promise.resolve();
    }
    return this.#data.receive(
      stream,
      session,
      {
        protocol: 'ESMTPSA',
        channel: 'submission',
        log: st.log,
        spoolErrorEvent: 'smtp.submission.spool_error',
        ...(st.cipher ? { tls: st.cipher } : {}),
        routeOf: (a) => st.routes.get(a) ?? 'local',
        inspect: async (headers) => {
          // The right may have gone while the message was coming in: nothing is committed then.
          const cut = await st.watched?.check();
          if (cut !== undefined) return { ok: false, code: 'AUTH_NOT_AUTHORISED', reason: cut };
          return this.#inspect(access, headers);
        },
        // The size is not journalled for submission refusals; a cut names the person.
        refuse: (code, reason) => {
          const cut = code === 'AUTH_NOT_AUTHORISED' && st.watched?.cut !== undefined;
          const extra = cut ? { principal: describePrincipal(access.principal) } : {};
          return this.#refuse(session, 'DATA', code, reason, extra);
        },
        accepted: (envelope) => this.#accepted(envelope, access, st),
      },
      cb,
    );
  }

  #accepted(envelope: SpoolEnvelope, access: Access, st: SessionState): void {
    this.#d.metrics.smtpCommands.inc({ listener: LISTENER, command: 'DATA', outcome: 'accepted' });
    this.#d.metrics.messageBytes.observe({ listener: LISTENER }, envelope.size);
    const entry = {
      event: 'smtp.submission.accepted',
      spoolId: envelope.id,
      messageId: envelope.messageId,
      from: envelope.mailFrom,
      to: envelope.recipients.map((r) => ({ address: r.address, route: r.route })),
      size: envelope.size,
      bal: access.bal,
      right: access.right,
      // Both identities when the sender is not the owner (ARCHITECTURE.md §4).
      principal: describePrincipal(access.principal),
    };
    this.#d.journal.record(entry);
    st.log.info(entry, 'message submitted');
  }
}
