import { isIPv4, isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { addressKey } from '../shared/index.js';

/**
 * Limits on failed authentications, per mailbox and per client source, shared by every gateway
 * process through Redis. Failures are counted in a window that restarts at each failure
 * (`failureWindowSeconds` of quiet forgets them). From the limit on, each failure locks the scope
 * for 1 s, 2 s, 4 s, ... up to `lockoutSeconds`; while locked, attempts are refused without looking
 * at the credentials, so guessing costs an attacker at least the lockout per try. A success clears
 * the mailbox's counter (not the source's: one good password must not launder a scanner's address).
 *
 * Keys (`<prefix>` is the configuration's `redis.prefix`):
 * - `auth:failures:<scope>:<id>` counter, `auth:lockout:<scope>:<id>` lock with a TTL;
 * - `auth:lockouts:<scope>` sorted set of locked ids scored by lock end (ms), for the gauge.
 * `<scope>` is `address` (a mailbox) or `source` (an IPv4 address, or an IPv6 /64).
 */

export type LimitScope = 'address' | 'source';

export interface AttemptKey {
  /** The mailbox asked for, when the client named one. */
  readonly bal?: string | undefined;
  readonly remote: string;
}

export type LimitCheck =
  | { readonly allowed: true }
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
    'maxFailuresPerAddress' | 'maxFailuresPerSource' | 'failureWindowSeconds' | 'lockoutSeconds'
  >;
  readonly clock: Clock;
}

// KEYS: counter, lock, lockout index. ARGV: window s, limit, cap ms, member, now ms.
// Returns {count, lock ms (0 when below the limit)}.
const RECORD_FAILURE = `
local n = redis.call('INCR', KEYS[1])
local window = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
if n < limit then
  redis.call('EXPIRE', KEYS[1], window)
  return {n, 0}
end
local ms = math.floor(math.min(tonumber(ARGV[3]), 1000 * 2 ^ math.min(n - limit, 40)))
redis.call('SET', KEYS[2], n, 'PX', ms)
redis.call('EXPIRE', KEYS[1], window + math.ceil(ms / 1000))
redis.call('ZADD', KEYS[3], tonumber(ARGV[5]) + ms, ARGV[4])
return {n, ms}
`;

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

  #key(kind: 'failures' | 'lockout', scope: LimitScope, id: string): string {
    return `${this.#prefix}auth:${kind}:${scope}:${id}`;
  }

  #index(scope: LimitScope): string {
    return `${this.#prefix}auth:lockouts:${scope}`;
  }

  #scopes(attempt: AttemptKey): Array<{ scope: LimitScope; id: string; limit: number }> {
    const scopes: Array<{ scope: LimitScope; id: string; limit: number }> = [
      { scope: 'source', id: sourceId(attempt.remote), limit: this.#limits.maxFailuresPerSource },
    ];
    const bal = attempt.bal === undefined ? '' : addressKey(attempt.bal);
    if (bal !== '') scopes.unshift({ scope: 'address', id: bal, limit: this.#limits.maxFailuresPerAddress });
    return scopes;
  }

  /** Whether an attempt may check credentials now; one round trip. */
  async check(attempt: AttemptKey): Promise<LimitCheck> {
    const scopes = this.#scopes(attempt);
    const pipeline = this.#redis.pipeline();
    for (const s of scopes) pipeline.pttl(this.#key('lockout', s.scope, s.id));
    const replies = await this.#call(() => pipeline.exec());
    let worst: LimitCheck = { allowed: true };
    scopes.forEach((s, i) => {
      const [err, ttl] = replies?.[i] ?? [
        new GatewayError('REGISTRY_UNAVAILABLE', 'authentication limits (Redis) unavailable', {
          reply: 'none',
        }),
        -2,
      ];
      if (err) throw unavailable(err);
      const ms = Number(ttl);
      if (ms > 0 && (worst.allowed || ms > worst.retryAfterMs)) {
        worst = { allowed: false, scope: s.scope, retryAfterMs: ms };
      }
    });
    return worst;
  }

  /** Counts a failed attempt against its mailbox (when named) and its source. */
  async recordFailure(attempt: AttemptKey): Promise<FailureRecord> {
    const now = this.#clock.now().getTime();
    const lockouts: Array<{ scope: LimitScope; ms: number }> = [];
    for (const s of this.#scopes(attempt)) {
      const reply = (await this.#call(() =>
        this.#redis.eval(
          RECORD_FAILURE,
          3,
          this.#key('failures', s.scope, s.id),
          this.#key('lockout', s.scope, s.id),
          this.#index(s.scope),
          String(this.#limits.failureWindowSeconds),
          String(s.limit),
          String(this.#limits.lockoutSeconds * 1000),
          s.id,
          String(now),
        ),
      )) as [number, number];
      if (reply[1] > 0) lockouts.push({ scope: s.scope, ms: reply[1] });
    }
    return { lockouts };
  }

  /** A success clears the mailbox's failures and lock. */
  async recordSuccess(attempt: AttemptKey): Promise<void> {
    const bal = attempt.bal === undefined ? '' : addressKey(attempt.bal);
    if (bal === '') return;
    await this.#call(() =>
      this.#redis
        .multi()
        .del(this.#key('failures', 'address', bal), this.#key('lockout', 'address', bal))
        .zrem(this.#index('address'), bal)
        .exec(),
    );
  }

  /** Failures counted now for one scope (tests, diagnostics). */
  async failures(scope: LimitScope, id: string): Promise<number> {
    const key = this.#key('failures', scope, scope === 'source' ? sourceId(id) : addressKey(id));
    return Number((await this.#call(() => this.#redis.get(key))) ?? 0);
  }

  /** Scopes locked right now, for the `mssgw_auth_lockouts_active{scope}` gauge. */
  async activeLockouts(): Promise<Record<LimitScope, number>> {
    const now = this.#clock.now().getTime();
    const pipeline = this.#redis.pipeline();
    for (const scope of ['address', 'source'] as const) {
      pipeline.zremrangebyscore(this.#index(scope), '-inf', now).zcard(this.#index(scope));
    }
    const replies = (await this.#call(() => pipeline.exec())) ?? [];
    return { address: Number(replies[1]?.[1] ?? 0), source: Number(replies[3]?.[1] ?? 0) };
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
