import { createHash, randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/** What a portal session holds once the person has logged in. */
export interface PortalSession {
  /** National id (8+RPPS or 0+ADELI) from the ID token or userinfo. */
  readonly nationalId: string;
  /** Display name from the provider's claims, when given. */
  readonly name?: string;
  /** ISO instant of the login: the absolute expiry counts from it. */
  readonly loggedInAt: string;
}

/** What a login in progress holds between the redirect to the provider and its return. */
export interface PendingLogin {
  readonly state: string;
  readonly nonce: string;
  readonly codeVerifier: string;
}

export interface SessionStoreOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  readonly idleSeconds: number;
  readonly maxSeconds: number;
  readonly clock: { now(): Date };
}

/** Seconds a login in progress may take at the provider. */
const PENDING_SECONDS = 600;

/**
 * Portal sessions in Redis behind an opaque random id (256 bits) that only the cookie carries; the
 * key is its SHA-256, so a read of Redis gives no usable cookie. Idle expiry is the key's TTL,
 * renewed on each use but never past the absolute expiry counted from the login. Every node of the
 * cluster shares them.
 */
export class SessionStore {
  readonly #o: SessionStoreOptions;

  constructor(options: SessionStoreOptions) {
    this.#o = options;
  }

  #key(kind: 'session' | 'pending', id: string): string {
    return `${this.#o.prefix}portal:${kind}:${createHash('sha256').update(id).digest('hex')}`;
  }

  async create(session: PortalSession): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    await this.#o.redis.set(this.#key('session', id), JSON.stringify(session), 'EX', this.#ttl(session));
    return id;
  }

  /** The live session of this id, its idle expiry renewed; undefined when unknown or expired. */
  async touch(id: string | undefined): Promise<PortalSession | undefined> {
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const key = this.#key('session', id);
    const json = await this.#o.redis.get(key);
    if (json === null) return undefined;
    const session = JSON.parse(json) as PortalSession;
    const ttl = this.#ttl(session);
    if (ttl <= 0) {
      await this.#o.redis.del(key);
      return undefined;
    }
    await this.#o.redis.expire(key, ttl);
    return session;
  }

  async destroy(id: string | undefined): Promise<void> {
    if (id !== undefined) await this.#o.redis.del(this.#key('session', id));
  }

  /** Seconds the session may still live: the idle period, cut at the absolute expiry. */
  #ttl(session: PortalSession): number {
    const absoluteEnd = Date.parse(session.loggedInAt) + this.#o.maxSeconds * 1000;
    const left = Math.floor((absoluteEnd - this.#o.clock.now().getTime()) / 1000);
    return Math.min(this.#o.idleSeconds, left);
  }

  async createPending(pending: PendingLogin): Promise<string> {
    const id = randomBytes(32).toString('base64url');
    await this.#o.redis.set(this.#key('pending', id), JSON.stringify(pending), 'EX', PENDING_SECONDS);
    return id;
  }

  /** The login in progress of this id, removed as it is read: a provider's answer is used once. */
  async takePending(id: string | undefined): Promise<PendingLogin | undefined> {
    if (id === undefined || !/^[A-Za-z0-9_-]{43}$/.test(id)) return undefined;
    const json = await this.#o.redis.getdel(this.#key('pending', id));
    return json === null ? undefined : (JSON.parse(json) as PendingLogin);
  }
}
