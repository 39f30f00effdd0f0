import type { Redis } from 'ioredis';
import type { Clock } from '../clock.js';
import { GatewayError, isGatewayError } from '../errors/index.js';
import type { AuditJournal } from '../observability/journal.js';
import {
  BAL_STATUSES,
  BAL_TYPES,
  balExistsError,
  assertTransition,
  isBalStatus,
  normaliseAddress,
  parseNewBal,
  statusesAllowingTransitionTo,
  type Bal,
  type BalStatus,
  type BalType,
} from './bal.js';
import { decodeBal, pairsToRecord } from './bal-record.js';
import { CREATE_BAL, TRANSITION_BAL } from './lua-script.js';

/** Creates the mailbox in the mail store (Dovecot); the store adapter implements it. Idempotent. */
export interface MailboxProvisioner {
  provision(address: string): Promise<void>;
}

/** Who made a change, for the audit journal. */
export interface Actor {
  readonly kind: 'admin-api' | 'cli' | 'system';
  readonly id: string;
  /** Remote address of the caller, when it came over the network. */
  readonly remote?: string;
}

export interface BalRegistryOptions {
  /** Shared client; its retry settings decide how long a call waits while Redis is down. */
  readonly redis: Redis;
  /** Prefix of every key (configuration `redis.prefix`). */
  readonly prefix: string;
  /** Mail domains we operate (configuration `domains`). */
  readonly domains: readonly string[];
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly provisioner: MailboxProvisioner;
}

export interface BalListQuery {
  readonly status?: BalStatus;
  readonly type?: BalType;
  /** `nextCursor` of the previous page. */
  readonly cursor?: string;
  /** Page size, 1 to 1000; default 100. */
  readonly limit?: number;
}

export interface BalPage {
  /** In address order. */
  readonly items: Bal[];
  /** Present when there may be more: pass it as `cursor` for the next page. */
  readonly nextCursor?: string;
}

export type BalCounts = Record<BalStatus, Record<BalType, number>>;

export const DEFAULT_LIST_LIMIT = 100;
export const MAX_LIST_LIMIT = 1000;
// Addresses read per round trip while listing, and the most one page may examine when filters match
// few BALs: a page can then come back short, with a cursor, rather than scanning the whole registry.
const LIST_BATCH = 200;
const LIST_MAX_SCAN = 10_000;

/**
 * The registry of our mailboxes in Redis: `<prefix>bal:<address>` hashes, the `<prefix>bals` sorted
 * set (all scores 0, so it is ordered by address and pages with ZRANGEBYLEX), and `<prefix>bals:counts`
 * (count per `status:type`, kept in step by the same scripts, for the Prometheus gauge).
 */
export class BalRegistry {
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #domains: readonly string[];
  readonly #clock: Clock;
  readonly #journal: AuditJournal;
  readonly #provisioner: MailboxProvisioner;

  constructor(options: BalRegistryOptions) {
    this.#redis = options.redis;
    this.#prefix = options.prefix;
    this.#domains = options.domains;
    this.#clock = options.clock;
    this.#journal = options.journal;
    this.#provisioner = options.provisioner;
  }

  #balKey(address: string): string {
    return `${this.#prefix}bal:${address}`;
  }

  get #indexKey(): string {
    return `${this.#prefix}bals`;
  }

  get #countsKey(): string {
    return `${this.#prefix}bals:counts`;
  }

  /**
   * Validates, provisions the mailbox in the store, then writes the record atomically. The store comes
   * first so that a store failure leaves no record behind; of two concurrent creates, one wins and the
   * other gets BAL_EXISTS (provisioning twice is harmless).
   */
  async create(input: { address: string; type: string; owner: string }, actor: Actor): Promise<Bal> {
    const bal = parseNewBal(input, this.#domains);
    const existing = await this.#call(() => this.#redis.hget(this.#balKey(bal.address), 'status'));
    if (existing !== null) throw balExistsError(bal.address, isBalStatus(existing) ? existing : 'active');
    await this.#provision(bal.address);
    const now = this.#clock.now().toISOString();
    const raced = await this.#call(() =>
      CREATE_BAL.run(
        this.#redis,
        [this.#balKey(bal.address), this.#indexKey, this.#countsKey],
        [bal.address, bal.type, bal.owner, now],
      ),
    );
    if (typeof raced === 'string') throw balExistsError(bal.address, isBalStatus(raced) ? raced : 'active');
    this.#journal.record({
      event: 'registry.bal.created',
      address: bal.address,
      type: bal.type,
      owner: bal.owner,
      actor,
    });
    return { ...bal, status: 'active', createdAt: now, updatedAt: now };
  }

  /** One round trip (SMTP RCPT hot path). Null when there is no such BAL. */
  async get(address: string): Promise<Bal | null> {
    const hash = await this.#call(() => this.#redis.hgetall(this.#balKey(normaliseAddress(address))));
    return decodeBal(hash);
  }

  async list(query: BalListQuery = {}): Promise<BalPage> {
    const limit = checkLimit(query.limit);
    let after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const items: Bal[] = [];
    for (let scanned = 0; scanned < LIST_MAX_SCAN; scanned += LIST_BATCH) {
      const batch = await this.#readBatch(after);
      for (const [i, bal] of batch.bals.entries()) {
        if (bal.status !== (query.status ?? bal.status) || bal.type !== (query.type ?? bal.type)) continue;
        items.push(bal);
        if (items.length === limit) {
          const lastOfAll = batch.exhausted && i === batch.bals.length - 1;
          return lastOfAll ? { items } : { items, nextCursor: encodeCursor(bal.address) };
        }
      }
      if (batch.exhausted || batch.last === undefined) return { items };
      after = batch.last;
    }
    return after === undefined ? { items } : { items, nextCursor: encodeCursor(after) };
  }

  /** Up to LIST_BATCH BALs after `after` in address order, in two round trips. */
  async #readBatch(after: string | undefined): Promise<{ bals: Bal[]; last?: string; exhausted: boolean }> {
    const min = after === undefined ? '-' : `(${after}`;
    const addresses = await this.#call(() =>
      this.#redis.zrangebylex(this.#indexKey, min, '+', 'LIMIT', 0, LIST_BATCH),
    );
    const exhausted = addresses.length < LIST_BATCH;
    const last = addresses[addresses.length - 1];
    if (last === undefined) return { bals: [], exhausted };
    const pipeline = this.#redis.pipeline();
    for (const address of addresses) pipeline.hgetall(this.#balKey(address));
    const replies = (await this.#call(() => pipeline.exec())) ?? [];
    const bals: Bal[] = [];
    for (const [err, hash] of replies) {
      if (err) throw registryUnavailable(err);
      const bal = decodeBal(hash as Record<string, string>);
      if (bal) bals.push(bal);
    }
    return { bals, last, exhausted };
  }

  async suspend(address: string, actor: Actor, reason?: string): Promise<Bal> {
    const now = this.#clock.now().toISOString();
    const hasReason = reason !== undefined && reason !== '';
    const bal = await this.#transition(address, 'suspended', {
      set: { updatedAt: now, suspendedAt: now, ...(hasReason ? { statusReason: reason } : {}) },
      del: hasReason ? [] : ['statusReason'],
    });
    this.#journalChange('registry.bal.suspended', bal, actor, hasReason ? reason : undefined);
    return bal;
  }

  async resume(address: string, actor: Actor): Promise<Bal> {
    const now = this.#clock.now().toISOString();
    const bal = await this.#transition(address, 'active', {
      set: { updatedAt: now },
      del: ['suspendedAt', 'statusReason'],
    });
    this.#journalChange('registry.bal.resumed', bal, actor, undefined);
    return bal;
  }

  /** Final: the record stays as a tombstone so the address can never be created again. */
  async delete(address: string, actor: Actor): Promise<Bal> {
    const now = this.#clock.now().toISOString();
    const bal = await this.#transition(address, 'deleted', {
      set: { updatedAt: now, deletedAt: now },
      del: ['statusReason'],
    });
    this.#journalChange('registry.bal.deleted', bal, actor, undefined);
    return bal;
  }

  /** Number of BALs per status and type, every combination present (zeros included). */
  async countByStatusAndType(): Promise<BalCounts> {
    const raw = await this.#call(() => this.#redis.hgetall(this.#countsKey));
    const counts = {} as BalCounts;
    for (const status of BAL_STATUSES) {
      counts[status] = {} as Record<BalType, number>;
      for (const type of BAL_TYPES) counts[status][type] = Number(raw[`${status}:${type}`] ?? 0);
    }
    return counts;
  }

  async #transition(
    input: string,
    to: BalStatus,
    change: { set: Record<string, string>; del: string[] },
  ): Promise<Bal> {
    const address = normaliseAddress(input);
    const request = JSON.stringify({ to, allowedFrom: statusesAllowingTransitionTo(to), ...change });
    const reply = await this.#call(() =>
      TRANSITION_BAL.run(this.#redis, [this.#balKey(address), this.#countsKey], [request]),
    );
    const [outcome, ...rest] = reply as unknown[];
    if (outcome === 'missing') throw balNotFound(address);
    if (outcome === 'refused') {
      const from = String(rest[0]);
      if (isBalStatus(from)) assertTransition(address, from, to);
      throw new GatewayError('INTERNAL', `registry record of ${address} has unknown status`, { address });
    }
    const bal = decodeBal(pairsToRecord(rest));
    if (!bal) throw balNotFound(address);
    return bal;
  }

  #journalChange(event: string, bal: Bal, actor: Actor, reason: string | undefined): void {
    this.#journal.record({
      event,
      address: bal.address,
      type: bal.type,
      actor,
      ...(reason === undefined ? {} : { reason }),
    });
  }

  async #provision(address: string): Promise<void> {
    try {
      await this.#provisioner.provision(address);
    } catch (err) {
      const why = err instanceof Error ? `: ${err.message}` : '';
      throw new GatewayError(
        'STORE_UNAVAILABLE',
        `the mail store could not provision ${address}${why}; nothing was created, try again once the store is up`,
        { address },
        { cause: err },
      );
    }
  }

  /** Runs a Redis call; anything Redis throws means the registry is unavailable to us. */
  async #call<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw isGatewayError(err) ? err : registryUnavailable(err);
    }
  }
}

function registryUnavailable(err: unknown): GatewayError {
  const why = err instanceof Error ? err.message : String(err);
  return new GatewayError(
    'REGISTRY_UNAVAILABLE',
    `mailbox registry (Redis) unavailable: ${why}`,
    {},
    { cause: err },
  );
}

function balNotFound(address: string): GatewayError {
  return new GatewayError('BAL_NOT_FOUND', `no mailbox ${address} in the registry`, { address });
}

function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return DEFAULT_LIST_LIMIT;
  if (Number.isInteger(limit) && limit >= 1 && limit <= MAX_LIST_LIMIT) return limit;
  throw new GatewayError('REQUEST_INVALID', `limit must be an integer from 1 to ${MAX_LIST_LIMIT}`, {
    limit,
  });
}

// Cursors are opaque to callers (base64url of the last address returned) so the paging scheme can
// change without breaking them.
function encodeCursor(address: string): string {
  return Buffer.from(address, 'utf8').toString('base64url');
}

function decodeCursor(cursor: string): string {
  const address = Buffer.from(cursor, 'base64url').toString('utf8');
  if (address === '' || !address.includes('@') || encodeCursor(address) !== cursor) {
    throw new GatewayError('REQUEST_INVALID', 'cursor is not one this API returned; start again without it', {
      cursor,
    });
  }
  return address;
}
