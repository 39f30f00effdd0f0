import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import {
  SMTPServer,
  type SMTPServerAddress,
  type SMTPServerDataStream,
  type SMTPServerSession,
} from 'smtp-server';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import type { Spool, SpoolEnvelope } from '../delivery/index.js';
import { GatewayError, type ErrorCode } from '../errors/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import {
  type PeerVerdict,
  type TrustMaterial,
  attributesFromSubject,
  presentedDn,
  issuedByOneOf,
  judgePeer,
} from '../pki/index.js';
import { type MailboxStatusView, routeByDomain } from '../routing/index.js';
import { normalizeDomain, parseAddress } from '../shared/index.js';
import type { WhitelistHolder } from '../directory/index.js';
import { adoptEnhancedCodes } from './enhanced-replies.js';
import { tlsFailureReason } from './mx-transaction.js';
import { type RefusalSink, closeSmtp, listenSmtp, lookupLocalRecipient, refuse } from './listener-support.js';
import { baseServerOptions, secureContextOf } from './server-options.js';
import { ConnectionGate } from '../shared/index.js';
import { ConnectionGuard } from './connection-guard.js';
import { DataFlow } from './data-flow.js';
import type { SmtpHookError } from './replies.js';

const LISTENER = 'mx';

export interface MailboxLookup {
  get(address: string): Promise<MailboxStatusView | null>;
}

export interface MxServerDeps {
  readonly config: Pick<Config, 'smtp' | 'tls' | 'domains'>;
  readonly trust: () => TrustMaterial;
  readonly whitelist: WhitelistHolder;
  readonly mailboxes: MailboxLookup;
  readonly spool: Spool;
  readonly onAccepted: (envelope: SpoolEnvelope) => void;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly metrics: Metrics;
}

interface ConnectionState {
  readonly log: Logger;
  verdict?: PeerVerdict;
  /** The peer's subject as presented (RFC 4514), for the Received header; the verdict holds the canonical one. */
  presentedDn?: string;
  tls?: { protocol: string; cipher: string; resumed: boolean };
}

/**
 * The inter-operator SMTP listener (ARCHITECTURE.md §5 "Inbound from another operator"): STARTTLS and
 * an IGC-Santé client certificate of a whitelisted operator before MAIL; the sender domain must be one
 * of that operator's; recipients must be active local mailboxes; 250 only once the message is durable.
 */
export class MxServer {
  readonly server: SMTPServer;
  readonly #d: MxServerDeps;
  readonly #domains: ReadonlySet<string>;
  readonly #state = new Map<string, ConnectionState>();
  readonly #sink: RefusalSink;
  readonly #data: DataFlow;
  readonly #gate: ConnectionGate;
  readonly #guard: ConnectionGuard;

  constructor(deps: MxServerDeps) {
    this.#d = deps;
    this.#data = new DataFlow({ ...deps, hostname: deps.config.smtp.hostname });
    const { mx, hostname } = deps.config.smtp;
    this.#gate = new ConnectionGate(mx);
    this.#domains = new Set(deps.config.domains.map((d) => normalizeDomain(d) ?? d.toLowerCase()));
    this.#sink = {
      listener: LISTENER,
      event: 'smtp.mx.rejected',
      metrics: deps.metrics,
      journal: deps.journal,
    };
    this.server = new SMTPServer(this.#options());
    this.#guard = new ConnectionGuard(this.server, {
      listener: LISTENER,
      gate: this.#gate,
      implicitTls: false,
      deadlineMs: mx.preTlsTimeoutSeconds * 1000,
      deadlineReason: 'pretls-timeout',
      hostname,
      metrics: deps.metrics,
      logger: deps.logger,
    });
    this.server.on('error', (err: Error & { code?: string; meta?: { stage?: string } }) =>
      this.#onServerError(err),
    );
  }

  #options(): ConstructorParameters<typeof SMTPServer>[0] {
    const { smtp } = this.#d.config;
    const trust = this.#d.trust();
    return {
      ...baseServerOptions({
        config: this.#d.config,
        trust,
        banner: 'MSSante operator gateway',
        sessionIdContext: 'mssgw-mx',
      }),
      secure: false,
      // The MX port takes no authentication: peers are identified by their certificate.
      disabledCommands: ['AUTH'],
      authOptional: true,
      maxClients: smtp.mx.maxConnections,
      socketTimeout: smtp.mx.socketTimeoutSeconds * 1000,
      onConnect: (session, cb) => this.#onConnect(session, cb),
      onSecure: (socket, session, cb) => this.#onSecure(socket as TLSSocket, session, cb),
      onMailFrom: (address, session, cb) => this.#onMailFrom(address, session, cb),
      onRcptTo: (address, session, cb) => void this.#onRcptTo(address, session, cb),
      onData: (stream, session, cb) => void this.#onData(stream, session, cb),
      onClose: (session) => this.#onClose(session),
    };
  }

  /** Rebuilds the TLS context after a certificate, CA or CRL change; new connections use it. */
  reloadTrust(): void {
    const trust = this.#d.trust();
    this.server.updateSecureContext(secureContextOf(trust));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return listenSmtp(this.server, port, host);
  }

  close(): Promise<void> {
    this.#gate.close();
    return closeSmtp(this.server);
  }

  #onConnect(session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    adoptEnhancedCodes(this.server, session.id);
    this.#guard.bind(session);
    const log = this.#d.logger.child({ cid: session.id, remote: session.remoteAddress, listener: LISTENER });
    this.#state.set(session.id, { log });
    this.#d.metrics.smtpConnections.inc({ listener: LISTENER });
    this.#d.metrics.smtpActiveConnections.inc({ listener: LISTENER });
    log.debug({ event: 'smtp.connection.opened' }, 'connection');
    cb();
  }

  #onSecure(socket: TLSSocket, session: SMTPServerSession, cb: (err?: Error | null) => void): void {
    const st = this.#state.get(session.id);
    if (!st) return cb();
    const cert = socket.getPeerCertificate();
    const hasCert =
      cert && typeof cert === 'object' && Object.keys(cert).length > 0 && cert.subject !== undefined;
    const cipher = socket.getCipher();
    st.tls = {
      protocol: socket.getProtocol() ?? 'unknown',
      cipher: cipher.name,
      resumed: socket.isSessionReused(),
    };
    this.#d.metrics.tlsHandshakes.inc({
      listener: LISTENER,
      outcome: 'ok',
      reason: st.tls.resumed ? 'resumed' : 'full',
    });
    if (hasCert) st.presentedDn = presentedDn(cert.subject);
    st.verdict = judgePeer(
      {
        secure: true,
        ...(hasCert ? { subject: attributesFromSubject(cert.subject) } : {}),
        authorized: socket.authorized,
        ...(hasCert && !socket.authorized ? { issuedByTrustedAuthority: this.#issuedByUs(socket) } : {}),
        ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
      },
      this.#d.whitelist.current(),
    );
    const v = st.verdict;
    // A trusted operator: no longer held to the pre-TLS deadline nor to its address's quota.
    if (v.ok) this.#guard.authenticated(session);
    this.#d.metrics.peerVerdicts.inc({ listener: LISTENER, outcome: v.ok ? 'accepted' : v.reason });
    const fields = {
      event: 'smtp.mx.peer',
      remote: session.remoteAddress,
      ...st.tls,
      ok: v.ok,
      dn: v.dn,
      reason: v.ok ? undefined : v.reason,
      authorizationError: socket.authorizationError,
    };
    this.#d.journal.record(fields);
    st.log.info(fields, 'peer identified');
    cb();
  }

  #issuedByUs(socket: TLSSocket): boolean {
    const leaf = socket.getPeerX509Certificate();
    return leaf !== undefined && issuedByOneOf(leaf, this.#d.trust().authorities);
  }

  #refuse(
    session: SMTPServerSession,
    command: string,
    code: ErrorCode,
    reason: string,
    extra: Record<string, unknown> = {},
  ): SmtpHookError {
    const st = this.#state.get(session.id);
    return refuse(this.#sink, session, st?.log, {
      command,
      code,
      reason,
      fields: { dn: st?.verdict?.dn, ...extra },
    });
  }

  #onMailFrom(
    address: SMTPServerAddress,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): void {
    const st = this.#state.get(session.id);
    const verdict = session.secure
      ? st?.verdict
      : { ok: false as const, code: 'TLS_REQUIRED' as const, reason: 'tls_required' };
    if (!verdict) return cb(this.#refuse(session, 'MAIL', 'CERT_MISSING', 'cert_missing'));
    if (!verdict.ok)
      return cb(this.#refuse(session, 'MAIL', verdict.code, verdict.reason, { from: address.address }));
    // Null reverse-path (DSN, MDN): authorised on the peer certificate alone (MSSANTE.md).
    if (address.address !== '') {
      const parsed = parseAddress(address.address);
      if (!parsed)
        return cb(
          this.#refuse(session, 'MAIL', 'BAD_ADDRESS_SYNTAX', 'bad_sender', { from: address.address }),
        );
      if (!verdict.domains.has(parsed.domain)) {
        return cb(
          this.#refuse(session, 'MAIL', 'SENDER_DOMAIN_NOT_AUTHORISED', 'sender_domain_mismatch', {
            from: address.address,
          }),
        );
      }
    }
    this.#d.metrics.smtpCommands.inc({ listener: LISTENER, command: 'MAIL', outcome: 'accepted' });
    cb();
  }

  async #onRcptTo(
    address: SMTPServerAddress,
    session: SMTPServerSession,
    cb: (err?: Error | null) => void,
  ): Promise<void> {
    const first = routeByDomain(address.address, this.#domains, this.#d.whitelist.current());
    if (first.kind === 'refuse')
      return cb(this.#refuse(session, 'RCPT', first.code, first.reason, { to: address.address }));
    const decision = await lookupLocalRecipient(
      this.#d.mailboxes,
      first.address,
      this.#state.get(session.id)?.log,
    );
    if (decision.kind === 'refuse')
      return cb(this.#refuse(session, 'RCPT', decision.code, decision.reason, { to: address.address }));
    this.#d.metrics.smtpCommands.inc({ listener: LISTENER, command: 'RCPT', outcome: 'accepted' });
    cb();
  }

  #onData(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    cb: (err?: Error | null, message?: string) => void,
  ): Promise<void> {
    const st = this.#state.get(session.id);
    const peerDn = st?.verdict?.ok ? st.verdict.dn : undefined;
    const presented = st?.verdict?.ok ? st.presentedDn : undefined;
    return this.#data.receive(
      stream,
      session,
      {
        protocol: 'ESMTPS',
        channel: 'mx',
        log: st?.log,
        spoolErrorEvent: 'smtp.mx.spool_error',
        ...(st?.tls ? { tls: st.tls } : {}),
        ...(peerDn ? { peerDn } : {}),
        ...(presented ? { presentedDn: presented } : {}),
        refuse: (code, reason, extra) => this.#refuse(session, 'DATA', code, reason, extra),
        accepted: (envelope) => this.#accepted(envelope, st),
      },
      cb,
    );
  }

  #accepted(envelope: SpoolEnvelope, st: ConnectionState | undefined): void {
    this.#d.metrics.smtpCommands.inc({ listener: LISTENER, command: 'DATA', outcome: 'accepted' });
    this.#d.metrics.messageBytes.observe({ listener: LISTENER }, envelope.size);
    const entry = {
      event: 'smtp.mx.accepted',
      spoolId: envelope.id,
      messageId: envelope.messageId,
      from: envelope.mailFrom,
      to: envelope.recipients.map((r) => r.address),
      size: envelope.size,
      dn: envelope.peer.dn,
      remote: envelope.peer.address,
      tlsProtocol: envelope.peer.tlsProtocol,
      tlsCipher: envelope.peer.tlsCipher,
    };
    this.#d.journal.record(entry);
    st?.log.info(entry, 'message accepted');
  }

  #onClose(session: SMTPServerSession): void {
    this.#guard.closed(session);
    this.#data.abort(session.id);
    if (this.#state.delete(session.id)) this.#d.metrics.smtpActiveConnections.dec({ listener: LISTENER });
  }

  #onServerError(err: Error & { code?: string }): void {
    const tlsReason = tlsFailureReason(err);
    if (tlsReason) {
      this.#d.metrics.tlsHandshakes.inc({ listener: LISTENER, outcome: 'failed', reason: tlsReason });
      this.#d.logger.info(
        { event: 'smtp.tls.failed', listener: LISTENER, reason: tlsReason, err: err.message },
        'TLS handshake failed',
      );
      return;
    }
    if (err instanceof GatewayError) {
      this.#d.logger.error({ event: 'smtp.error', code: err.code, err: err.message }, 'smtp error');
    } else {
      this.#d.logger.debug({ event: 'smtp.socket_error', code: err.code, err: err.message }, 'socket error');
    }
  }
}
