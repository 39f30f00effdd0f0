import { SECRET_MAX_BYTES, SECRET_MIN_LENGTH } from '../auth/index.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal } from '../observability/index.js';
import { type Actor, type Bal, type BalType } from '../registry/index.js';
import type { SecretStatus } from './secret-status.js';
import { addressKey } from '../shared/index.js';

/**
 * The operator's side of mailbox secrets (ARCHITECTURE.md §4: operator-local secrets for PLAIN/LOGIN
 * only where the configuration allows it, never for PER mailboxes by default). The authenticator
 * checks a secret at login; this decides who may have one, and journals every change. The secret
 * itself, and its hash, never leave the store: not in an answer, a journal line or a log line.
 */

/** What this needs of the secret store; the authenticator's SecretStore (auth/secrets.ts) provides it. */
export interface SecretKeeper {
  set(bal: string, secret: string): Promise<void>;
  /** True when there was a secret to remove. */
  remove(bal: string): Promise<boolean>;
  has(bal: string): Promise<boolean>;
}

export interface BalSecretsOptions {
  readonly registry: {
    get(address: string): Promise<Bal | null>;
    /** Open sessions logged in with a removed or replaced secret are cut (SessionWatch, on every node). */
    announceAccessChange?(address: string): Promise<void>;
  };
  readonly store: SecretKeeper;
  /** Configuration `auth.passwordTypes`: the mailbox types that may have a secret. */
  readonly passwordTypes: readonly BalType[];
  readonly journal: AuditJournal;
}

export class BalSecrets {
  readonly #o: BalSecretsOptions;

  constructor(options: BalSecretsOptions) {
    this.#o = options;
  }

  async status(address: string): Promise<SecretStatus> {
    const bal = await this.#bal(address);
    return {
      address: bal.address,
      type: bal.type,
      hasSecret: await this.#o.store.has(bal.address),
      allowed: this.#o.passwordTypes.includes(bal.type),
    };
  }

  /**
   * Sets or replaces the secret of a live mailbox whose type the configuration allows. Every check
   * comes before the write, so a refused request changes nothing. A suspended mailbox takes one (it
   * opens nothing until resumed: the authenticator checks the status at each login).
   */
  async set(address: string, secret: string, actor: Actor): Promise<void> {
    const bal = await this.#bal(address);
    if (bal.status === 'deleted') throw deletedError(bal.address);
    if (!this.#o.passwordTypes.includes(bal.type)) throw this.#notAllowed(bal);
    checkSecret(secret, bal.address);
    await this.#o.store.set(bal.address, secret);
    // A deletion between the check and the write would leave the secret behind it: look again.
    const after = await this.#o.registry.get(bal.address);
    if (after === null || after.status === 'deleted') {
      await this.#o.store.remove(bal.address);
      throw deletedError(bal.address);
    }
    this.#o.journal.record({ event: 'registry.secret.set', address: bal.address, type: bal.type, actor });
    // A replaced secret ends the sessions opened with the old one (SessionWatch, on every node).
    await this.#o.registry.announceAccessChange?.(bal.address);
  }

  /**
   * Removes the secret of a mailbox, whatever its type or status: taking a credential away is
   * always allowed (also after `auth.passwordTypes` changed, or to clear one a failed deletion left).
   */
  async remove(address: string, actor: Actor): Promise<void> {
    const bal = await this.#bal(address);
    if (!(await this.#o.store.remove(bal.address))) {
      throw new GatewayError(
        'SECRET_NOT_FOUND',
        `${bal.address} has no secret (PUT /v1/bals/:address/secret, mssgw bal secret set, sets one)`,
        { address: bal.address },
      );
    }
    this.#journalRemoved(bal, actor, 'removed');
    await this.#o.registry.announceAccessChange?.(bal.address);
  }

  /**
   * Called once a mailbox is deleted: its secret goes too, so no credential outlives its mailbox. If
   * this step fails the mailbox stays deleted (a deleted mailbox opens for no credential) and the
   * message says how to finish.
   */
  async forgetDeleted(bal: Bal, actor: Actor): Promise<void> {
    let removed: boolean;
    try {
      removed = await this.#o.store.remove(bal.address);
    } catch (err) {
      throw new GatewayError(
        'REGISTRY_UNAVAILABLE',
        `${bal.address} is deleted, but its secret could not be removed (Redis unavailable); ` +
          `run "mssgw bal secret remove ${bal.address}" once Redis is back`,
        { address: bal.address },
        { cause: err },
      );
    }
    if (removed) this.#journalRemoved(bal, actor, 'mailbox_deleted');
  }

  async #bal(address: string): Promise<Bal> {
    const bal = await this.#o.registry.get(address);
    if (bal) return bal;
    const normalised = addressKey(address);
    throw new GatewayError(
      'BAL_NOT_FOUND',
      `no mailbox ${normalised} in the registry (mssgw bal list, or GET /v1/bals, lists them)`,
      { address: normalised },
    );
  }

  #notAllowed(bal: Bal): GatewayError {
    const allowed = this.#o.passwordTypes;
    const now = allowed.length === 0 ? 'none' : allowed.join(', ');
    const caution =
      bal.type === 'PER'
        ? ' (not advised: ARCHITECTURE.md §4 keeps PER mailboxes to Pro Santé Connect tokens and certificates)'
        : '';
    return new GatewayError(
      'SECRET_NOT_ALLOWED',
      `${bal.address} is a ${bal.type} mailbox; only the types in auth.passwordTypes (now: ${now}) ` +
        `may have a secret (PLAIN/LOGIN). To allow it, add ${bal.type} to auth.passwordTypes and ` +
        `restart the gateway${caution}`,
      { address: bal.address, type: bal.type },
    );
  }

  #journalRemoved(bal: Bal, actor: Actor, reason: 'removed' | 'mailbox_deleted'): void {
    this.#o.journal.record({
      event: 'registry.secret.removed',
      address: bal.address,
      type: bal.type,
      actor,
      reason,
    });
  }
}

function deletedError(address: string): GatewayError {
  return new GatewayError(
    'BAL_INVALID_TRANSITION',
    `${address} is deleted: a deleted mailbox takes no secret`,
    { address, status: 'deleted' },
  );
}

// Characters no PLAIN/LOGIN exchange can carry: NUL separates the fields of SASL PLAIN (RFC 4616 §2),
// and an IMAP LOGIN string holds no line break (RFC 9051 §4.3).
const UNCARRIABLE = /[\0\r\n]/;

/** Throws SECRET_INVALID for a secret no client could present; the message never quotes it. */
function checkSecret(secret: string, address: string): void {
  const limits = `a mailbox secret has ${SECRET_MIN_LENGTH} characters at least and ${SECRET_MAX_BYTES} bytes (UTF-8) at most`;
  let why: string | undefined;
  if ([...secret].length < SECRET_MIN_LENGTH) why = `the secret is too short: ${limits}`;
  else if (Buffer.byteLength(secret, 'utf8') > SECRET_MAX_BYTES) why = `the secret is too long: ${limits}`;
  else if (UNCARRIABLE.test(secret)) {
    why = 'the secret holds NUL, CR or LF, which no PLAIN/LOGIN client can send; choose another';
  }
  if (why !== undefined) throw new GatewayError('SECRET_INVALID', why, { address });
}
