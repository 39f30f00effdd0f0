import { createHash, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import { addressKey } from '../shared/index.js';

/**
 * Operator-managed secrets for PLAIN/LOGIN (ARCHITECTURE.md §4: only where `auth.passwordTypes`
 * allows, never for PER mailboxes by default). One secret per mailbox, stored as an scrypt hash
 * (RFC 7914) in `<prefix>secret:<address>`, in a self-describing string modelled on the PHC format:
 * `$scrypt$ln=15,r=8,p=1$<salt base64>$<hash base64>`, so the cost can be raised later while old
 * hashes still verify. The secret itself is never stored or logged.
 */

export interface ScryptCost {
  /** log2 of the CPU/memory cost N. */
  readonly ln: number;
  readonly r: number;
  readonly p: number;
}

/** About 32 MiB and a few tens of milliseconds per hash (OWASP's scrypt minimum is ln=17,r=8,p=1 at 128 MiB; 15 keeps logins cheap). */
export const DEFAULT_SCRYPT_COST: ScryptCost = { ln: 15, r: 8, p: 1 };
export const SECRET_MIN_LENGTH = 12;
export const SECRET_MAX_BYTES = 1024;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
const FORMAT =
  /^\$scrypt\$ln=(\d{1,2}),r=(\d{1,2}),p=(\d{1,2})\$([A-Za-z0-9+/]+={0,2})\$([A-Za-z0-9+/]+={0,2})$/;

function derive(secret: string, salt: Buffer, cost: ScryptCost, length: number): Promise<Buffer> {
  const N = 2 ** cost.ln;
  const options: ScryptOptions = { N, r: cost.r, p: cost.p, maxmem: 256 * N * cost.r * cost.p + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(secret.normalize('NFC'), salt, length, options, (err, key) => (err ? reject(err) : resolve(key))),
  );
}

/** A new hash string for `secret`, with a fresh random salt. */
export async function hashSecret(secret: string, cost: ScryptCost = DEFAULT_SCRYPT_COST): Promise<string> {
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(secret, salt, cost, HASH_BYTES);
  return `$scrypt$ln=${cost.ln},r=${cost.r},p=${cost.p}$${salt.toString('base64')}$${hash.toString('base64')}`;
}

/** Checks `secret` against a hash string, in constant time for a given hash. False for a corrupt hash. */
export async function verifySecretHash(stored: string, secret: string): Promise<boolean> {
  const m = FORMAT.exec(stored);
  if (!m) return false;
  const cost = { ln: Number(m[1]), r: Number(m[2]), p: Number(m[3]) };
  if (cost.ln < 10 || cost.ln > 22 || cost.r < 1 || cost.p < 1) return false;
  const expected = Buffer.from(m[5]!, 'base64');
  if (expected.length < 16) return false;
  const actual = await derive(secret, Buffer.from(m[4]!, 'base64'), cost, expected.length);
  return timingSafeEqual(actual, expected);
}

/**
 * Which secret a hash string stands for: every `set` draws a new salt, so a replaced secret (even
 * the same one again) gets a new generation. Derived from the stored hash, never from the secret.
 */
export function secretGeneration(stored: string): string {
  return createHash('sha256').update(stored).digest('base64url').slice(0, 22);
}

export interface SecretStoreOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  /** Cost of new hashes; default DEFAULT_SCRYPT_COST. */
  readonly cost?: ScryptCost;
}

export class SecretStore {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #cost: ScryptCost;
  /** Verified when a mailbox has no secret, so that the answer takes as long as a real check. */
  readonly #decoy: Promise<string>;

  constructor(options: SecretStoreOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#cost = options.cost ?? DEFAULT_SCRYPT_COST;
    this.#decoy = hashSecret(randomBytes(16).toString('hex'), this.#cost);
    this.#decoy.catch(() => undefined);
  }

  #key(bal: string): string {
    return `${this.#prefix}secret:${addressKey(bal)}`;
  }

  /** Sets (or replaces) the secret of `bal`. Throws REQUEST_INVALID for a too short or too long one. */
  async set(bal: string, secret: string): Promise<void> {
    if ([...secret].length < SECRET_MIN_LENGTH || Buffer.byteLength(secret) > SECRET_MAX_BYTES) {
      throw new GatewayError(
        'REQUEST_INVALID',
        `a mailbox secret has ${SECRET_MIN_LENGTH} characters at least and ${SECRET_MAX_BYTES} bytes at most`,
        { address: addressKey(bal) },
      );
    }
    const hash = await hashSecret(secret, this.#cost);
    await this.#call(() => this.#redis.set(this.#key(bal), hash));
  }

  /** True when `secret` is the secret of `bal`; false when it is not, or `bal` has none. */
  async verify(bal: string, secret: string): Promise<boolean> {
    return (await this.check(bal, secret)) !== undefined;
  }

  /** The generation of the secret of `bal` when `secret` is it; undefined when not, or none. */
  async check(bal: string, secret: string): Promise<string | undefined> {
    const stored = await this.#call(() => this.#redis.get(this.#key(bal)));
    if (stored === null || Buffer.byteLength(secret) > SECRET_MAX_BYTES) {
      await verifySecretHash(await this.#decoy, secret.slice(0, SECRET_MAX_BYTES));
      return undefined;
    }
    return (await verifySecretHash(stored, secret)) ? secretGeneration(stored) : undefined;
  }

  /** The generation of the secret `bal` has now; undefined when it has none. */
  async generation(bal: string): Promise<string | undefined> {
    const stored = await this.#call(() => this.#redis.get(this.#key(bal)));
    return stored === null ? undefined : secretGeneration(stored);
  }

  /** Removes the secret of `bal`; true when there was one. */
  async remove(bal: string): Promise<boolean> {
    return (await this.#call(() => this.#redis.del(this.#key(bal)))) > 0;
  }

  async has(bal: string): Promise<boolean> {
    return (await this.#call(() => this.#redis.exists(this.#key(bal)))) > 0;
  }

  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw new GatewayError(
        'REGISTRY_UNAVAILABLE',
        'mailbox secrets (Redis) unavailable',
        {},
        { cause: err },
      );
    }
  }
}
