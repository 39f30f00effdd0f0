import {
  type Access,
  type AuthOutcome,
  type AuthRequest,
  type ClientAuthenticator,
  principalIdentity,
} from '../auth/index.js';
import type { Clock } from '../shared/index.js';
import { type ErrorCode, toGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { ImapEndpoint, MasterCredentials } from '../store/index.js';
import type { ImapObserver } from './imap-observer.js';
import { failureLine, taggedLine } from './responses.js';
import { type SaslIo, sendSaslError } from './sasl-exchange.js';
import { type StoreConnector, type StoreSession, openStoreSession } from './store-login.js';

/**
 * From a decoded login request to a store session (ARCHITECTURE.md §4 and §5 "IMAP"): the
 * authenticator decides, then the gateway opens the mailbox on the store with its master login and
 * answers the client's command with the store's capabilities. Every refusal is one line from the
 * response table; a token mechanism first sends its error challenge (RFC 7628 §3.2.3).
 */
export interface StoreAccess {
  readonly imap: ImapEndpoint;
  readonly master: MasterCredentials;
  /** Connections to the store opened ahead of logins (the same endpoint and master user). */
  readonly connector?: StoreConnector;
}

function openStoreFor(store: StoreAccess, mailbox: string, timeoutMs: number): Promise<StoreSession> {
  return store.connector
    ? store.connector.open(mailbox, timeoutMs)
    : openStoreSession(store.imap, store.master, mailbox, timeoutMs);
}

export interface LoginContext {
  readonly authenticator: ClientAuthenticator;
  readonly store: StoreAccess;
  readonly storeTimeoutMs: number;
  readonly clock: Clock;
  readonly log: Logger;
  readonly journal: AuditJournal;
  readonly observer: ImapObserver;
  /** Facts about the connection for the journal (listener, TLS version and cipher). */
  readonly connection: Readonly<Record<string, unknown>>;
  send(line: string): void;
  /** False once the connection closed or the pre-auth timer fired while we waited. */
  isOpen(): boolean;
}

export type LoginResult =
  /** The reply was sent; the session stays before login. */
  | { readonly kind: 'refused' }
  /** The connection went away meanwhile; nothing to send. */
  | { readonly kind: 'closed' }
  /** The tagged OK was sent; the store session is ready to be piped. */
  | { readonly kind: 'logged-in'; readonly access: Access; readonly store: StoreSession };

async function authenticate(ctx: LoginContext, request: AuthRequest): Promise<AuthOutcome> {
  try {
    return await ctx.authenticator.authenticate(request);
  } catch (err) {
    const failure = toGatewayError(err);
    ctx.log.error(
      { event: 'imap.login.error', code: failure.code, err: failure.message },
      'authenticator failed',
    );
    return { ok: false, code: failure.code, reason: 'exception' };
  }
}

function refuse(
  ctx: LoginContext,
  tag: string,
  request: AuthRequest,
  code: ErrorCode,
  reason: string,
  started: number,
) {
  const seconds = (ctx.clock.now().getTime() - started) / 1000;
  ctx.observer.login(request.mechanism, code, seconds);
  ctx.log.info(
    { event: 'imap.login.refused', code, reason, mechanism: request.mechanism, bal: request.bal },
    'login refused',
  );
  ctx.send(failureLine(tag, code));
}

/**
 * Runs one login. `sasl` is the AUTHENTICATE exchange's I/O (absent for the LOGIN command, which
 * has no continuation to carry an error challenge).
 */
export async function performLogin(
  ctx: LoginContext,
  tag: string,
  request: AuthRequest,
  sasl: SaslIo | undefined,
): Promise<LoginResult> {
  const started = ctx.clock.now().getTime();
  const outcome = await authenticate(ctx, request);
  if (!ctx.isOpen()) return { kind: 'closed' };
  if (!outcome.ok) {
    if (outcome.saslError !== undefined && sasl !== undefined) {
      const answer = await sendSaslError(outcome.saslError, sasl);
      if (answer === 'closed' || !ctx.isOpen()) return { kind: 'closed' };
      if (answer === 'cancelled') {
        ctx.send(taggedLine(tag, 'BAD', 'Authentication cancelled'));
        return { kind: 'refused' };
      }
    }
    refuse(ctx, tag, request, outcome.code, outcome.reason, started);
    return { kind: 'refused' };
  }
  return openStore(ctx, tag, request, outcome.access, started);
}

async function openStore(
  ctx: LoginContext,
  tag: string,
  request: AuthRequest,
  access: Access,
  started: number,
): Promise<LoginResult> {
  let store: StoreSession;
  try {
    store = await openStoreFor(ctx.store, access.bal, ctx.storeTimeoutMs);
  } catch (err) {
    const failure = toGatewayError(err, 'STORE_UNAVAILABLE');
    ctx.log.error(
      { event: 'imap.store.unavailable', bal: access.bal, err: failure.message },
      'store login failed',
    );
    if (!ctx.isOpen()) return { kind: 'closed' };
    refuse(ctx, tag, request, 'STORE_UNAVAILABLE', 'store', started);
    return { kind: 'refused' };
  }
  if (!ctx.isOpen()) {
    store.socket.destroy();
    return { kind: 'closed' };
  }
  // RFC 9051 §6.2.2: the OK may carry the capabilities, sparing the client a CAPABILITY command;
  // they are the store's own, since from now on the client talks to the store.
  ctx.send(taggedLine(tag, 'OK', 'Logged in', `CAPABILITY ${store.capabilities}`));
  ctx.observer.login(request.mechanism, 'ok', (ctx.clock.now().getTime() - started) / 1000);
  const fields = {
    event: 'imap.login',
    bal: access.bal,
    right: access.right,
    principal: principalIdentity(access.principal),
    mechanism: request.mechanism,
    ...ctx.connection,
  };
  ctx.journal.record(fields);
  ctx.log.info(fields, 'logged in');
  ctx.authenticator.recordActivity(access, 'imap').catch((err: unknown) => {
    ctx.log.warn(
      { event: 'imap.activity.failed', bal: access.bal, err: String(err) },
      'activity not recorded',
    );
  });
  return { kind: 'logged-in', access, store };
}
