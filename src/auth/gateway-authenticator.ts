import type { X509Certificate } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { ERROR_CODES, isGatewayError, loginOutcomeLabel, type ErrorCode } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import {
  resolveAccess,
  type AccessibleBal,
  type ActivityChannel,
  type Bal,
  type Grant,
} from '../registry/index.js';
import { AuthFailure, isAuthFailure } from './auth-failure.js';
import { failedEvent, succeededEvent, type AuthObserver } from './auth-events.js';
import { certificatePrincipal } from './certificate-principal.js';
import { FailureLimiter, credentialKind } from './failure-limiter.js';
import { saslErrorChallenge } from './sasl.js';
import type { Reauthorisation } from './session-watch.js';
import { SecretStore } from './secrets.js';
import type { TokenVerifier } from './token-verifier.js';
import type {
  Access,
  AuthOutcome,
  AuthRequest,
  Channel,
  ClientAuthenticator,
  Principal,
  SaslMechanism,
  TlsFacts,
} from './types.js';
import { addressKey } from '../shared/index.js';

/**
 * The authentication core shared by IMAP and SMTP submission (ARCHITECTURE.md §4): "the login name is
 * the mailbox; the credential is the person or software". Each attempt goes through the same steps:
 * TLS, failure limits, proof of the credential (token, certificate or secret), the mailbox, the
 * mechanism's policy, the caller's right on the mailbox, the mailbox's status. Every attempt is
 * journaled; the credential itself never is.
 */

/** What the authenticator needs of the registry; BalRegistry provides it. */
export interface AuthRegistry {
  get(address: string): Promise<Bal | null>;
  grants(address: string): Promise<readonly Grant[]>;
  balsForPerson(nationalId: string, now?: Date): Promise<readonly AccessibleBal[]>;
  balsForCertificate(dn: string, now?: Date): Promise<readonly AccessibleBal[]>;
  recordActivity(address: string, channel: ActivityChannel, at: Date): Promise<boolean>;
}

export interface GatewayAuthenticatorOptions {
  readonly config: Config['auth'] & { readonly mode: Config['mode'] };
  readonly registry: AuthRegistry;
  /** Shared client, for failure limits and mailbox secrets. */
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  /** Our trusted authorities, read at each attempt so that a trust reload is seen. */
  readonly authorities: () => readonly X509Certificate[];
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly clock: Clock;
  readonly verifier: TokenVerifier;
  readonly observer?: AuthObserver;
}

/** Failures that do not count towards the limits: no credential was wrong, or it was authentic. */
const UNCOUNTED: ReadonlySet<ErrorCode> = new Set([
  'AUTH_TLS_REQUIRED',
  'AUTH_RATE_LIMITED',
  'AUTH_MECHANISM_NOT_ALLOWED',
  // Authentic but stale: clients refresh their token; counting would lock the owner out.
  'AUTH_TOKEN_EXPIRED',
  'AUTH_MAILBOX_DISABLED',
]);

/** Mutable trace of one attempt, for the journal when a step refuses. */
interface Attempt {
  bal: string | undefined;
  principal: Principal | undefined;
}

export class GatewayAuthenticator implements ClientAuthenticator {
  readonly #o: GatewayAuthenticatorOptions;
  readonly #limiter: FailureLimiter;
  readonly #secrets: SecretStore;

  constructor(options: GatewayAuthenticatorOptions) {
    this.#o = options;
    this.#limiter = new FailureLimiter({
      redis: options.redis,
      prefix: options.prefix,
      limits: options.config,
      clock: options.clock,
    });
    this.#secrets = new SecretStore({ redis: options.redis, prefix: options.prefix });
  }

  /** The failure limits, for the lockout gauge. */
  get limiter(): FailureLimiter {
    return this.#limiter;
  }

  /** Mailbox secrets, for the admin route that sets them. */
  get secrets(): SecretStore {
    return this.#secrets;
  }

  /**
   * Nothing before TLS (RFC 3207 §4, RFC 9051 §11.1: credentials never travel in clear); then the
   * token mechanisms, EXTERNAL with a verified client certificate, PLAIN/LOGIN where allowed.
   */
  mechanisms(tls: TlsFacts): readonly SaslMechanism[] {
    if (!tls.secure) return [];
    const out: SaslMechanism[] = ['XOAUTH2', 'OAUTHBEARER'];
    if (tls.peerCertificate !== undefined && tls.authorized) out.push('EXTERNAL');
    if (this.#o.config.passwordTypes.length > 0) out.push('PLAIN', 'LOGIN');
    return out;
  }

  async authenticate(request: AuthRequest): Promise<AuthOutcome> {
    const attempt: Attempt = {
      bal: request.bal === undefined ? undefined : addressKey(request.bal),
      principal: undefined,
    };
    try {
      const { access, bal } = await this.#decide(request, attempt);
      // Not awaited: the credential held, and a reset that lags (or is lost) only leaves the
      // counters to their window; the client need not wait for it.
      void this.#resetFailures(access.bal, request);
      const event = succeededEvent(request, access, bal);
      this.#o.journal.record(event);
      this.#o.logger.info(event, 'authenticated');
      this.#o.observer?.attempt({ channel: request.channel, mechanism: request.mechanism, outcome: 'ok' });
      return { ok: true, access };
    } catch (err) {
      return this.#refuse(request, attempt, err);
    }
  }

  /**
   * The login's authorisation, again, for an open session (session-watch.ts): the mailbox still
   * exists and is active, and the principal still holds every scope it logged in with. The
   * credential is not proven again: it was at login, and a token's own lifetime does not bound the
   * session (RFC 7628 leaves that to the server); the right does.
   */
  async reauthorise(access: Access): Promise<Reauthorisation> {
    const bal = await this.#o.registry.get(access.bal);
    if (!bal || bal.status === 'deleted') return { cut: 'mailbox_deleted' };
    const now = this.#o.clock.now();
    const again = resolveAccess(bal, await this.#grants(bal.address), access.principal, now);
    const narrowed = again !== null && [...access.scopes].some((s) => !again.scopes.has(s));
    if (again === null || narrowed) {
      const expired = access.expiresAt !== undefined && Date.parse(access.expiresAt) <= now.getTime();
      return { cut: expired ? 'right_expired' : 'right_revoked', mailboxOwner: bal.owner };
    }
    if (bal.status !== 'active') return { cut: 'mailbox_suspended', mailboxOwner: bal.owner };
    // A session opened with the mailbox's secret holds only as long as that very secret is the
    // mailbox's: removed, or replaced (a new generation), it ends.
    if (access.principal.kind === 'secret') {
      const now = await this.#secrets.generation(bal.address);
      if (now === undefined) return { cut: 'secret_removed', mailboxOwner: bal.owner };
      const proved = access.principal.generation;
      if (proved !== undefined && proved !== now) return { cut: 'secret_replaced', mailboxOwner: bal.owner };
    }
    return {
      mailboxOwner: bal.owner,
      ...(again.expiresAt === undefined ? {} : { expiresAt: again.expiresAt }),
    };
  }

  async recordActivity(access: Access, channel: Channel): Promise<void> {
    // An application's use counts on its own channel (registry activity: application mTLS).
    const used: ActivityChannel = access.principal.kind === 'application' ? 'application' : channel;
    await this.#o.registry.recordActivity(access.bal, used, this.#o.clock.now());
  }

  async #decide(request: AuthRequest, attempt: Attempt): Promise<{ access: Access; bal: Bal }> {
    if (!request.tls.secure) throw new AuthFailure('AUTH_TLS_REQUIRED', 'tls_required');
    if (!this.mechanisms(request.tls).includes(request.mechanism)) {
      throw new AuthFailure('AUTH_MECHANISM_NOT_ALLOWED', 'mechanism_not_offered');
    }
    const kind = credentialKind(request.mechanism);
    // The mailbox and its grants are read while the limits are checked (one wait, not three); the
    // credential is checked only once the limits allow the attempt (a locked-out attacker costs no
    // token or password check, nor a key fetch), and the verdicts are taken in the order below.
    const mailbox = attempt.bal === undefined ? undefined : settle(this.#mailbox(attempt.bal));
    const limit = await this.#limiter.check({ bal: attempt.bal, remote: request.remote, kind });
    if (!limit.allowed) {
      throw new AuthFailure('AUTH_RATE_LIMITED', 'rate_limited', undefined, {
        scope: limit.scope,
        retryAfterMs: limit.retryAfterMs,
      });
    }
    // Many sources failed on this mailbox: slow every attempt on it, never refuse the right one.
    if (limit.delayMs > 0) await sleep(limit.delayMs);
    const principal = await this.#prove(request);
    attempt.principal = principal;
    attempt.bal ??= await this.#impliedMailbox(principal);
    const { bal, grants } = await (mailbox === undefined ? this.#mailbox(attempt.bal) : outcome(mailbox));
    if (!bal) throw new AuthFailure('AUTH_NOT_AUTHORISED', 'mailbox_unknown');
    const passwordMechanism = request.mechanism === 'PLAIN' || request.mechanism === 'LOGIN';
    if (passwordMechanism && !this.#o.config.passwordTypes.includes(bal.type)) {
      throw new AuthFailure('AUTH_MECHANISM_NOT_ALLOWED', 'password_not_allowed', undefined, {
        type: bal.type,
      });
    }
    const access = resolveAccess(bal, grants, principal, this.#o.clock.now());
    if (!access) throw new AuthFailure('AUTH_NOT_AUTHORISED', 'no_right');
    // After the right: only someone entitled to the mailbox learns that it is suspended.
    if (bal.status !== 'active') throw new AuthFailure('AUTH_MAILBOX_DISABLED', `mailbox_${bal.status}`);
    return { access, bal };
  }

  /** The mailbox and its grants, read together. */
  async #mailbox(address: string): Promise<{ bal: Bal | null; grants: readonly Grant[] }> {
    const [bal, grants] = await Promise.all([this.#o.registry.get(address), this.#grants(address)]);
    return { bal, grants };
  }

  async #grants(address: string): Promise<readonly Grant[]> {
    try {
      return await this.#o.registry.grants(address);
    } catch (err) {
      // Deleted between the two reads: the same answer as an unknown mailbox.
      if (isGatewayError(err) && err.code === 'BAL_NOT_FOUND') return [];
      throw err;
    }
  }

  /** Proves the credential; throws AuthFailure when it does not hold. */
  async #prove(request: AuthRequest): Promise<Principal> {
    switch (request.mechanism) {
      case 'XOAUTH2':
      case 'OAUTHBEARER': {
        if (!request.token) throw new AuthFailure('AUTH_MALFORMED', 'no_token');
        const token = await this.#o.verifier.verify(request.token);
        return { kind: 'person', nationalId: token.nationalId, via: token.issuer };
      }
      case 'EXTERNAL': {
        const { peerCertificate } = request.tls;
        if (!peerCertificate) throw new AuthFailure('CERT_MISSING', 'cert_missing');
        const verdict = certificatePrincipal(
          {
            certificate: peerCertificate,
            authorized: request.tls.authorized,
            ...(request.tls.authorizationError === undefined
              ? {}
              : { authorizationError: request.tls.authorizationError }),
          },
          this.#o.authorities(),
          this.#o.clock.now(),
        );
        if (!verdict.ok) {
          throw new AuthFailure(
            verdict.code,
            verdict.reason,
            undefined,
            verdict.dn ? { dn: verdict.dn } : {},
          );
        }
        return verdict.principal;
      }
      case 'PLAIN':
      case 'LOGIN': {
        const { authcid, password } = request;
        if (!authcid || !password) throw new AuthFailure('AUTH_MALFORMED', 'no_password');
        const generation = await this.#secrets.check(authcid, password);
        if (generation === undefined) throw new AuthFailure('AUTH_CREDENTIALS_INVALID', 'bad_secret');
        return { kind: 'secret', bal: addressKey(authcid), generation };
      }
    }
  }

  /**
   * The mailbox a client that named none means (EXTERNAL with an empty authzid, RFC 4422 Appendix
   * A): the one mailbox the credential opens; with none or several, the client must name it.
   */
  async #impliedMailbox(principal: Principal): Promise<string> {
    const now = this.#o.clock.now();
    let candidates: readonly AccessibleBal[] = [];
    if (principal.kind === 'application')
      candidates = await this.#o.registry.balsForCertificate(principal.dn, now);
    if (principal.kind === 'person')
      candidates = await this.#o.registry.balsForPerson(principal.nationalId, now);
    if (principal.kind === 'secret') return principal.bal;
    const [only] = candidates;
    if (candidates.length !== 1 || only === undefined) {
      throw new AuthFailure(
        'AUTH_MAILBOX_REQUIRED',
        candidates.length === 0 ? 'no_mailbox' : 'several_mailboxes',
        undefined,
        { candidates: candidates.length },
      );
    }
    return only.bal;
  }

  async #refuse(request: AuthRequest, attempt: Attempt, err: unknown): Promise<AuthOutcome> {
    const failure = isAuthFailure(err)
      ? err
      : isGatewayError(err)
        ? new AuthFailure(err.code, err.code.toLowerCase(), err.message)
        : new AuthFailure('INTERNAL', 'internal');
    const info = ERROR_CODES[failure.code];
    if (info.side === 'client' && !info.temporary && !UNCOUNTED.has(failure.code)) {
      await this.#countFailure(request, attempt);
    }
    const event = failedEvent(request, attempt.bal, attempt.principal, failure);
    this.#o.journal.record(event);
    if (info.side === 'client') this.#o.logger.info(event, 'authentication refused');
    else
      this.#o.logger.warn({ ...event, err: isAuthFailure(err) ? undefined : err }, 'authentication failed');
    this.#o.observer?.attempt({
      channel: request.channel,
      mechanism: request.mechanism,
      outcome: loginOutcomeLabel(failure.code),
    });
    const issuer = typeof failure.details.issuer === 'string' ? failure.details.issuer : undefined;
    const via = attempt.principal?.kind === 'person' ? attempt.principal.via : undefined;
    const discovery = this.#o.verifier.openidConfigurationUrl(issuer ?? via ?? '');
    const saslError = saslErrorChallenge(request.mechanism, failure.code, discovery);
    return { ok: false, code: failure.code, reason: failure.reason, ...(saslError ? { saslError } : {}) };
  }

  async #resetFailures(bal: string, request: AuthRequest): Promise<void> {
    try {
      await this.#limiter.recordSuccess({
        bal,
        remote: request.remote,
        kind: credentialKind(request.mechanism),
      });
    } catch (err) {
      // The credential held: a lost reset only leaves the counter to its window.
      this.#o.logger.warn({ err, event: 'auth.limit.unavailable' }, 'failures not reset');
    }
  }

  async #countFailure(request: AuthRequest, attempt: Attempt): Promise<void> {
    try {
      const { lockouts } = await this.#limiter.recordFailure({
        bal: attempt.bal,
        remote: request.remote,
        kind: credentialKind(request.mechanism),
      });
      for (const { scope } of lockouts) this.#o.observer?.lockout(scope);
    } catch (err) {
      // The refusal stands; only the count is lost while Redis is down.
      this.#o.logger.warn({ err, event: 'auth.limit.unavailable' }, 'failure not counted');
    }
  }
}

/** A promise whose rejection is held until `outcome` is awaited (none goes unhandled meanwhile). */
type Settled<T> = Promise<{ ok: true; value: T } | { ok: false; error: unknown }>;

function settle<T>(promise: Promise<T>): Settled<T> {
  return promise.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

async function outcome<T>(settled: Settled<T>): Promise<T> {
  const result = await settled;
  if (result.ok) return result.value;
  throw result.error;
}
