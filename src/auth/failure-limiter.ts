import { createHash } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { addressKey } from '../shared/index.js';
import type { SaslMechanism } from './types.js';

/**
 * Limits on failed authentications, shared by every gateway process through Redis. The rule is that
 * throttling punishes the source of the failures, never their victim:
 *
 * - `source` (an IPv4 address, or an IPv6 /64): from `maxFailuresPerSource` failures on, each
 *   failure locks that source for 1 s, 2 s, 4 s, ... up to `lockoutSeconds`;
 * - `source_mailbox` (one source on one mailbox): the same from `maxFailuresPerAddress` failures;
 * - `mailbox` (every source on one mailbox, against attackers spread over many addresses): never a
 *   lock, only a delay before the credential is checked, doubling from 250 ms up to
 *   `mailboxDelayMaxMs`. The owner with the right secret, from another address, is slowed at worst.
 *   A source feeds this counter only with its failures below its own `source_mailbox` limit: past
 *   it, that source is the one locked, and a brute force from one address would otherwise slow the
 *   owner's every login by up to `mailboxDelayMaxMs` (the soak measured a p99 of 2.8 s). So one
 *   source alone never brings the delay; several do.
 *
 * Each credential kind has its own counters: password failures (PLAIN, LOGIN) never slow or lock a
 * token (XOAUTH2, OAUTHBEARER) or certificate (EXTERNAL) login, so a guesser of weak secrets cannot
 * take away the strong ways in. While locked, attempts are refused without looking at the
 * credentials, so guessing costs an attacker at least the lockout per try. A success clears the
 * mailbox's counters (not the source's: one good password must not launder a scanner's address).
 *
 * Memory is bounded in Redis, not in the process: every counter and lock is a key with a TTL
 * (`failureWindowSeconds` after its last failure, or the lock's length), so millions of distinct
 * names held by an attacker expire on their own; Redis is where the counts must live anyway, to be
 * shared by every node. Mailbox names longer than 64 octets are keyed by their SHA-256, so a key
 * stays short whatever the client sends. The gauge's sorted sets hold only the locks in force:
 * every failure trims the ended ones, and they are capped at `LOCK_INDEX_CAP` members.
 *
 * Keys (`<prefix>` is the configuration's `redis.prefix`, `<kind>` is `password`, `token` or
 * `certificate`): `auth:failures:<kind>:<scope>:<id>` counter, `auth:lockout:<kind>:<scope>:<id>`
 * lock, `auth:lockouts:<scope>` sorted set of locks scored by their end (ms).
 */

export type CredentialKind = 'password' | 'token' | 'certificate';
/** Scopes that lock. */
export type LimitScope = 'source' | 'source_mailbox';
type CountScope = LimitScope | 'mailbox';

export interface AttemptKey {
  /** The mailbox asked for, when the client named one. */
  readonly bal?: string | undefined;
  readonly remote: string;
  readonly kind: CredentialKind;
}

export type LimitCheck =
  /** `delayMs`: wait this long before checking the credential (many failures on the mailbox). */
  | { readonly allowed: true; readonly delayMs: number }
  | { readonly allowed: false; readonly scope: LimitScope; readonly retryAfterMs: number };

export interface FailureRecord {
  /** Scopes this failure locked, with the lock's length. */
  readonly lockouts: ReadonlyArray<{ readonly scope: LimitScope; readonly ms: number }>;
}

export interface FailureLimiterOptions {
  readonly redis: Redis;
  readonly prefix: string;
  readonly limits: Pick<
    Config['auth'],
    | 'maxFailuresPerAddress'
    | 'maxFailuresPerSource'
    | 'failureWindowSeconds'
    | 'lockoutSeconds'
    | 'mailboxDelayMaxMs'
  >;
  readonly clock: Clock;
}

/** Most locks the gauge's index remembers per scope; beyond, the oldest are dropped (gauge only). */
export const LOCK_INDEX_CAP = 100_000;
/** First delay once a mailbox reached its limit across sources. */
const FIRST_DELAY_MS = 250;

/** The credential kind of a mechanism: the family whose failures it counts and suffers. */
export function credentialKind(mechanism: SaslMechanism): CredentialKind {
  if (mechanism === 'PLAIN' || mechanism === 'LOGIN') return 'password';
  return mechanism === 'EXTERNAL' ? 'certificate' : 'token';
}

// KEYS: counter, lock, lockout index. ARGV: window s, limit, cap ms, member, now ms, index cap,
// lock (1) or count only (0). Returns {count, lock ms (0 when below the limit or not locking)}.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if n < limit or ARGV[7] == '0' then
  redis.call('EXPIRE', KEYS[1], window)
  return {n, 0}
end
local ms = math.floor(math.min(tonumber(ARGV[3]), 1000 * 2 ^ math.min(n - limit, 40)))
redis.call('SET', KEYS[2], n, 'PX', ms)
redis.call('EXPIRE', KEYS[1], window + math.ceil(ms / 1000))
local now = tonumber(ARGV[5])
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
redis.call('ZADD', KEYS[3], now + ms, ARGV[4])
local size = redis.call('ZCARD', KEYS[3])
local cap = tonumber(ARGV[6])
if size > cap then redis.call('ZREMRANGEBYRANK', KEYS[3], 0, size - cap - 1) end
redis.call('PEXPIRE', KEYS[3], tonumber(ARGV[3]) + 1000)
return {n, ms}
`;

interface ScopeKey {
  readonly scope: CountScope;
  readonly id: string;
  readonly limit: number;
}

export class FailureLimiter {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #limits: FailureLimiterOptions['limits'];
  readonly #clock: Clock;

  constructor(options: FailureLimiterOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#limits = options.limits;
    this.#clock = options.clock;
  }

  #key(kind: 'failures' | 'lockout', credential: CredentialKind, s: ScopeKey): string {
    return `${this.#prefix}auth:${kind}:${credential}:${s.scope}:${s.id}`;
  }

  #index(scope: LimitScope): string {
    return `${this.#prefix}auth:lockouts:${scope}`;
  }

  #scopes(attempt: Pick<AttemptKey, 'bal' | 'remote'>): ScopeKey[] {
    const source = sourceId(attempt.remote);
    const scopes: ScopeKey[] = [{ scope: 'source', id: source, limit: this.#limits.maxFailuresPerSource }];
    const bal = mailboxId(attempt.bal);
    if (bal !== '') {
      const limit = this.#limits.maxFailuresPerAddress;
      scopes.push({ scope: 'source_mailbox', id: `${source}|${bal}`, limit });
      scopes.push({ scope: 'mailbox', id: bal, limit });
    }
    return scopes;
  }

  /** Whether an attempt may check credentials now, and after what delay; one round trip. */
  async check(attempt: AttemptKey): Promise<LimitCheck> {
    const scopes = this.#scopes(attempt);
    const pipeline = this.#redis.pipeline();
    for (const s of scopes) {
      if (s.scope === 'mailbox') pipeline.get(this.#key('failures', attempt.kind, s));
      else pipeline.pttl(this.#key('lockout', attempt.kind, s));
    }
    const replies = await this.#call(() => pipeline.exec());
    let worst: LimitCheck = { allowed: true, delayMs: 0 };
    let delayMs = 0;
    scopes.forEach((s, i) => {
      const [err, value] = replies?.[i] ?? [
        new GatewayError('REGISTRY_UNAVAILABLE', 'authentication limits (Redis) unavailable', {
          reply: 'none',
        }),
        null,
      ];
      if (err) throw unavailable(err);
      if (s.scope === 'mailbox') {
        const n = Number(value ?? 0);
        if (n >= s.limit) {
          const delay = FIRST_DELAY_MS * 2 ** Math.min(n - s.limit, 20);
          delayMs = Math.min(this.#limits.mailboxDelayMaxMs, delay);
        }
        return;
      }
      const ms = Number(value);
      if (ms > 0 && (worst.allowed || ms > worst.retryAfterMs)) {
        worst = { allowed: false, scope: s.scope, retryAfterMs: ms };
      }
    });
    return worst.allowed ? { allowed: true, delayMs } : worst;
  }

  /** Counts a failed attempt against its source, and its mailbox when named. */
  async recordFailure(attempt: AttemptKey): Promise<FailureRecord> {
    const now = this.#clock.now().getTime();
    const lockouts: Array<{ scope: LimitScope; ms: number }> = [];
    /** This source's failures on this mailbox, this one included (scopes come in that order). */
    let fromSource = 0;
    for (const s of this.#scopes(attempt)) {
      // Past its own limit, a source is locked out of the mailbox; it no longer slows the others.
      if (s.scope === 'mailbox' && fromSource >= s.limit) continue;
      const locks = s.scope !== 'mailbox';
      const reply = (await this.#call(() =>
        this.#redis.eval(
          RECORD_FAILURE,
          3,
          this.#key('failures', attempt.kind, s),
          this.#key('lockout', attempt.kind, s),
          this.#index(s.scope === 'mailbox' ? 'source_mailbox' : s.scope),
          String(this.#limits.failureWindowSeconds),
          String(s.limit),
          String(this.#limits.lockoutSeconds * 1000),
          `${attempt.kind}:${s.id}`,
          String(now),
          String(LOCK_INDEX_CAP),
          locks ? '1' : '0',
        ),
      )) as [number, number];
      if (s.scope === 'source_mailbox') fromSource = reply[0];
      if (reply[1] > 0 && s.scope !== 'mailbox') lockouts.push({ scope: s.scope, ms: reply[1] });
    }
    return { lockouts };
  }

  /** A success clears the mailbox's failures (from this source and from all) for this credential kind. */
  async recordSuccess(attempt: AttemptKey): Promise<void> {
    const scopes = this.#scopes(attempt).filter((s) => s.scope !== 'source');
    if (scopes.length === 0) return;
    const multi = this.#redis.multi();
    for (const s of scopes) {
      multi.del(this.#key('failures', attempt.kind, s), this.#key('lockout', attempt.kind, s));
      if (s.scope === 'source_mailbox') multi.zrem(this.#index(s.scope), `${attempt.kind}:${s.id}`);
    }
    await this.#call(() => multi.exec());
  }

  /**
   * Failures counted now for one scope (tests, diagnostics): `source` takes an address, `mailbox` a
   * mailbox, `source_mailbox` both.
   */
  async failures(
    kind: CredentialKind,
    scope: CountScope,
    key: { readonly remote?: string; readonly bal?: string },
  ): Promise<number> {
    const s = this.#scopes({ remote: key.remote ?? '', bal: key.bal }).find((x) => x.scope === scope);
    if (!s) return 0;
    return Number((await this.#call(() => this.#redis.get(this.#key('failures', kind, s)))) ?? 0);
  }

  /** Locks in force now, for the `mssgw_auth_lockouts_active{scope}` gauge. */
  async activeLockouts(): Promise<Record<LimitScope, number>> {
    const now = this.#clock.now().getTime();
    const pipeline = this.#redis.pipeline();
    for (const scope of ['source', 'source_mailbox'] as const) {
      pipeline.zremrangebyscore(this.#index(scope), '-inf', now).zcard(this.#index(scope));
    }
    const replies = (await this.#call(() => pipeline.exec())) ?? [];
    return { source: Number(replies[1]?.[1] ?? 0), source_mailbox: Number(replies[3]?.[1] ?? 0) };
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw unavailable(err);
    }
  }
}

function unavailable(err: unknown): GatewayError {
  return err instanceof GatewayError
    ? err
    : new GatewayError(
        'REGISTRY_UNAVAILABLE',
        'authentication limits (Redis) unavailable',
        {},
        { cause: err },
      );
}

/** A mailbox as a key part: normalised, and hashed when long (the client chooses it). */
function mailboxId(bal: string | undefined): string {
  const id = bal === undefined ? '' : addressKey(bal);
  if (id.length <= 64) return id;
  return `sha256:${createHash('sha256').update(id).digest('base64url')}`;
}

/**
 * The source a failure is counted against: an IPv4 address (IPv4-mapped IPv6 included), or the /64
 * of an IPv6 address, the block one subscriber usually holds (RFC 6177 §3), so that rotating the
 * interface identifier does not reset the count.
 */
export function sourceId(remote: string): string {
  const ip = remote.trim().toLowerCase().replace(/%.*$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(ip);
  if (mapped?.[1] && isIPv4(mapped[1])) return mapped[1];
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  const [head = '', tail] = ip.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  // An embedded dotted IPv4 (RFC 4291 §2.2) takes two groups.
  const rightGroups = right.reduce((n, g) => n + (g.includes('.') ? 2 : 1), 0);
  const zeros = tail === undefined ? [] : Array<string>(8 - left.length - rightGroups).fill('0');
  const groups = [...left, ...zeros, ...right].slice(0, 4).map((g) => parseInt(g, 16).toString(16));
  return `${groups.join(':')}::/64`;
}
