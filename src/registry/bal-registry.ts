import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal } from '../observability/index.js';
import type { Actor } from './actor.js';
import { ActivityStore, type ActivityChannel, type BalActivity } from './activity-store.js';
import {
  BAL_STATUSES,
  BAL_TYPES,
  balExistsError,
  assertTransition,
  isBalStatus,
  parseNewBal,
  statusesAllowingTransitionTo,
  type Bal,
  type BalStatus,
  type BalType,
} from './bal.js';
import { decodeBal, pairsToRecord } from './bal-record.js';
import {
  MAX_SUMMARY_LIMIT,
  READ_BAL_SUMMARIES,
  decodeSummaries,
  summaryScriptArgs,
  type BalSummaryPage,
} from './bal-summary.js';
import { metadataFields, parseMetadataPatch, type BalMetadataPatch } from './bal-metadata.js';
import type { BalChangeKind, BalObserver } from './bal-observer.js';
import { CREATE_BAL, TRANSITION_BAL, UPDATE_BAL_METADATA, type LuaScript } from './lua-script.js';
import { balNotFound, callRedis, registryUnavailable } from './redis-call.js';
import { RegistryKeys } from './registry-keys.js';
import type { GrantRequest, SubjectRequest } from './rights.js';
import { DELETE_BAL } from './rights-scripts.js';
import { RightsStore, type AccessibleBal, type GrantView } from './rights-store.js';
import { addressKey } from '../shared/index.js';

/** Creates the mailbox in the mail store (Dovecot); the store adapter implements it. Idempotent. */
export interface MailboxProvisioner {
  provision(address: string): Promise<void>;
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
  /** Told of every committed change (the publication service); none by default. */
  readonly observer?: BalObserver;
  /**
   * The national directory's entry for an address (the extraction mirror), when it has one. A PER
   * mailbox already listed there must be created for the person listed (MSSANTE.md, directory).
   */
  readonly nationalEntry?: (address: string) => Promise<{ readonly nationalId?: string } | undefined>;
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

type StatusChange = { set: Record<string, string>; del: string[] };

/** The script a status change runs: TRANSITION_BAL, or DELETE_BAL which also drops the rights. */
interface TransitionScript {
  readonly script: LuaScript;
  readonly keys: (address: string) => string[];
  readonly args: (address: string) => string[];
  /** The transition's own reply within the script's reply. */
  readonly unwrap: (reply: unknown) => unknown;
}

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
  readonly #keys: RegistryKeys;
  readonly #domains: readonly string[];
  readonly #clock: Clock;
  readonly #journal: AuditJournal;
  readonly #provisioner: MailboxProvisioner;
  readonly #observer: BalObserver | undefined;
  readonly #nationalEntry: BalRegistryOptions['nationalEntry'];
  readonly #rights: RightsStore;
  readonly #activity: ActivityStore;

  constructor(options: BalRegistryOptions) {
    this.#redis = options.redis;
    this.#keys = new RegistryKeys(options.prefix);
    this.#domains = options.domains;
    this.#clock = options.clock;
    this.#journal = options.journal;
    this.#provisioner = options.provisioner;
    this.#observer = options.observer;
    this.#nationalEntry = options.nationalEntry;
    this.#rights = new RightsStore({ redis: this.#redis, keys: this.#keys, journal: this.#journal });
    this.#activity = new ActivityStore({ redis: this.#redis, keys: this.#keys });
  }

  /**
   * Validates, provisions the mailbox in the store, then writes the record atomically. The store comes
   * first so that a store failure leaves no record behind; of two concurrent creates, one wins and the
   * other gets BAL_EXISTS (provisioning twice is harmless).
   */
  async #checkNationalOwner(address: string, owner: string): Promise<void> {
    const lookup = this.#nationalEntry;
    if (!lookup) return;
    const entry = await lookup(address).catch(() => undefined); // no mirror in service: no check
    if (entry?.nationalId && entry.nationalId !== owner)
      throw new GatewayError(
        'BAL_OWNER_MISMATCH',
        `${address} is listed in the national directory for another person (${entry.nationalId}); the owner must be that national id`,
        { address, listedFor: entry.nationalId },
      );
  }

  async create(
    input: { address: string; type: string; owner: string } & BalMetadataPatch,
    actor: Actor,
  ): Promise<Bal> {
    const bal = parseNewBal(input, this.#domains);
    const metadata = parseMetadataPatch(bal.type, input);
    // Every BAL records its red-list flag, false unless given.
    const fields = metadataFields({ listeRouge: false, ...metadata });
    const existing = await callRedis(() => this.#redis.hget(this.#keys.bal(bal.address), 'status'));
    if (existing !== null) throw balExistsError(bal.address, isBalStatus(existing) ? existing : 'active');
    if (bal.type === 'PER') await this.#checkNationalOwner(bal.address, bal.owner);
    await this.#provision(bal.address);
    const now = this.#clock.now().toISOString();
    const raced = await callRedis(() =>
      CREATE_BAL.run(
        this.#redis,
        [this.#keys.bal(bal.address), this.#keys.index, this.#keys.counts, this.#keys.personOwns(bal.owner)],
        [bal.address, bal.type, bal.owner, now, ...Object.entries(fields.set).flat()],
      ),
    );
    if (typeof raced === 'string') throw balExistsError(bal.address, isBalStatus(raced) ? raced : 'active');
    this.#journal.record({
      event: 'registry.bal.created',
      address: bal.address,
      type: bal.type,
      owner: bal.owner,
      actor,
      ...(metadata.listeRouge ? { listeRouge: true } : {}),
    });
    const created: Bal = {
      ...bal,
      status: 'active',
      createdAt: now,
      updatedAt: now,
      listeRouge: metadata.listeRouge ?? false,
      ...metadata.set,
    };
    await this.#notify('created', created, actor);
    return created;
  }

  /**
   * Changes the published metadata (red list, description, service, responsible) of a mailbox that
   * is not deleted; address, type and owner never change. Journaled with the fields set and removed.
   */
  async updateMetadata(address: string, patch: BalMetadataPatch, actor: Actor): Promise<Bal> {
    const current = await this.#existing(address);
    const change = parseMetadataPatch(current.type, patch);
    const now = this.#clock.now().toISOString();
    const fields = metadataFields(change);
    const request = JSON.stringify({ set: { ...fields.set, updatedAt: now }, del: fields.del });
    const reply = (await callRedis(() =>
      UPDATE_BAL_METADATA.run(this.#redis, [this.#keys.bal(current.address)], [request]),
    )) as unknown[];
    const [outcome, ...rest] = reply;
    if (outcome === 'missing') throw balNotFound(current.address);
    if (outcome === 'deleted') assertTransition(current.address, 'deleted', 'active');
    const bal = decodeBal(pairsToRecord(rest));
    if (!bal) throw balNotFound(current.address);
    this.#journal.record({
      event: 'registry.bal.updated',
      address: bal.address,
      type: bal.type,
      actor,
      set: { ...change.set, ...(change.listeRouge === undefined ? {} : { listeRouge: change.listeRouge }) },
      ...(change.remove.length === 0 ? {} : { removed: change.remove }),
    });
    await this.#notify('updated', bal, actor);
    return bal;
  }

  /** One round trip (SMTP RCPT hot path). Null when there is no such BAL. */
  async get(address: string): Promise<Bal | null> {
    const hash = await callRedis(() => this.#redis.hgetall(this.#keys.bal(addressKey(address))));
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

  /**
   * Every mailbox, any status, a page at a time in address order, with only what the daily lifecycle
   * run needs (bal-summary.ts): one round trip per page of up to MAX_SUMMARY_LIMIT. Cursors are those
   * of `list`.
   */
  async summaries(
    query: { readonly cursor?: string; readonly limit?: number } = {},
  ): Promise<BalSummaryPage> {
    const limit = checkLimit(query.limit, MAX_SUMMARY_LIMIT);
    const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
    const reply = await callRedis(() =>
      READ_BAL_SUMMARIES.run(
        this.#redis,
        [this.#keys.index],
        summaryScriptArgs(this.#keys.bal(''), after, limit),
      ),
    );
    const { items, scanned, last } = decodeSummaries(reply as string);
    return scanned < limit || last === undefined ? { items } : { items, nextCursor: encodeCursor(last) };
  }

  /** Up to LIST_BATCH BALs after `after` in address order, in two round trips. */
  async #readBatch(after: string | undefined): Promise<{ bals: Bal[]; last?: string; exhausted: boolean }> {
    const min = after === undefined ? '-' : `(${after}`;
    const addresses = await callRedis(() =>
      this.#redis.zrangebylex(this.#keys.index, min, '+', 'LIMIT', 0, LIST_BATCH),
    );
    const exhausted = addresses.length < LIST_BATCH;
    const last = addresses[addresses.length - 1];
    if (last === undefined) return { bals: [], exhausted };
    const pipeline = this.#redis.pipeline();
    for (const address of addresses) pipeline.hgetall(this.#keys.bal(address));
    const replies = (await callRedis(() => pipeline.exec())) ?? [];
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
    await this.#announce(bal.address);
    await this.#notify('suspended', bal, actor);
    return bal;
  }

  async resume(address: string, actor: Actor): Promise<Bal> {
    const now = this.#clock.now().toISOString();
    const bal = await this.#transition(address, 'active', {
      set: { updatedAt: now },
      del: ['suspendedAt', 'statusReason'],
    });
    this.#journalChange('registry.bal.resumed', bal, actor, undefined);
    await this.#notify('resumed', bal, actor);
    return bal;
  }

  /**
   * Final: the record stays as a tombstone so the address can never be created again. Its grants and
   * their index entries go in the same atomic step (each journaled as revoked); its activity stays.
   */
  async delete(address: string, actor: Actor): Promise<Bal> {
    const now = this.#clock.now().toISOString();
    const change = { set: { updatedAt: now, deletedAt: now }, del: ['statusReason'] };
    const { bal, reply } = await this.#transitionWith(this.#deletion, address, 'deleted', change);
    const [, dropped] = reply as [unknown, string[]];
    this.#journalChange('registry.bal.deleted', bal, actor, undefined);
    this.#rights.journalDropped(bal.address, dropped, actor);
    await this.#announce(bal.address);
    await this.#notify('deleted', bal, actor);
    return bal;
  }

  /**
   * Grants a right on a mailbox (ARCHITECTURE.md §4), replacing the subject's previous grant there.
   * Refused on a deleted mailbox; a suspended one keeps and takes grants (status is checked at use).
   */
  async grant(address: string, request: GrantRequest, actor: Actor): Promise<GrantView> {
    const bal = await this.#existing(address);
    const granted = await this.#rights.grant(bal, request, actor, this.#clock.now());
    // A replaced grant may be narrower (scopes, expiry) than the one open sessions use.
    await this.#announce(bal.address);
    return granted;
  }

  /** Revokes the right of a person or certificate on a mailbox. RIGHT_NOT_FOUND when there is none. */
  async revoke(address: string, subject: SubjectRequest, actor: Actor): Promise<GrantView> {
    const bal = await this.#existing(address);
    const revoked = await this.#rights.revoke(bal.address, subject, actor, this.#clock.now());
    await this.#announce(bal.address);
    return revoked;
  }

  /** Every grant on a mailbox, expired ones included (flagged `expired`) until the purge runs. */
  grants(address: string): Promise<GrantView[]> {
    return this.#rights.list(addressKey(address), this.#clock.now());
  }

  /** "Which mailboxes may this person open": owned PER mailboxes and live grants, not deleted ones. */
  balsForPerson(nationalId: string, now: Date = this.#clock.now()): Promise<AccessibleBal[]> {
    return this.#rights.balsForPerson(nationalId, now);
  }

  /** Mailboxes an application certificate (any DN spelling) is bound to, not deleted ones. */
  balsForCertificate(dn: string, now: Date = this.#clock.now()): Promise<AccessibleBal[]> {
    return this.#rights.balsForCertificate(dn, now);
  }

  /** Removes the grants expired at `now` and returns them (journaled `registry.right.expired`). */
  async purgeExpiredGrants(now: Date = this.#clock.now()): Promise<GrantView[]> {
    const purged = await this.#rights.purgeExpired(now);
    for (const address of new Set(purged.map((g) => g.address))) await this.#announce(address);
    return purged;
  }

  /**
   * Tells every node that access to a mailbox changed for a reason kept outside the registry (its
   * secret removed): open sessions on it are checked again.
   */
  announceAccessChange(address: string): Promise<void> {
    return this.#announce(address);
  }

  /** Address of every mailbox whose access changes are announced (see RegistryKeys.accessChannel). */
  get accessChannel(): string {
    return this.#keys.accessChannel;
  }

  /**
   * Tells every process that who may use this mailbox changed, so that open sessions are checked
   * again at once. Best effort: the change is committed; sessions also re-check at each MAIL and at
   * the expiry instant, and every process re-checks all its sessions when its subscription resumes.
   */
  async #announce(address: string): Promise<void> {
    try {
      await this.#redis.publish(this.#keys.accessChannel, address);
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.#journal.record({ event: 'registry.announce.failed', address, error });
    }
  }

  /** A successful use of the mailbox; see ActivityStore.record. */
  recordActivity(address: string, channel: ActivityChannel, at: Date): Promise<boolean> {
    return this.#activity.record(addressKey(address), channel, at);
  }

  activity(address: string): Promise<BalActivity> {
    return this.#activity.read(addressKey(address));
  }

  async #existing(address: string): Promise<Bal> {
    const bal = await this.get(address);
    if (!bal) throw balNotFound(addressKey(address));
    return bal;
  }

  /** Number of BALs per status and type, every combination present (zeros included). */
  async countByStatusAndType(): Promise<BalCounts> {
    const raw = await callRedis(() => this.#redis.hgetall(this.#keys.counts));
    const counts = {} as BalCounts;
    for (const status of BAL_STATUSES) {
      counts[status] = {} as Record<BalType, number>;
      for (const type of BAL_TYPES) counts[status][type] = Number(raw[`${status}:${type}`] ?? 0);
    }
    return counts;
  }

  async #transition(input: string, to: BalStatus, change: StatusChange): Promise<Bal> {
    return (await this.#transitionWith(this.#plainTransition, input, to, change)).bal;
  }

  /** Runs a status change through `via`; returns the new BAL and the script's whole reply. */
  async #transitionWith(
    via: TransitionScript,
    input: string,
    to: BalStatus,
    change: StatusChange,
  ): Promise<{ bal: Bal; reply: unknown }> {
    const address = addressKey(input);
    const request = JSON.stringify({ to, allowedFrom: statusesAllowingTransitionTo(to), ...change });
    const reply = await callRedis(() =>
      via.script.run(this.#redis, via.keys(address), [request, ...via.args(address)]),
    );
    const [outcome, ...rest] = via.unwrap(reply) as unknown[];
    if (outcome === 'missing') throw balNotFound(address);
    if (outcome === 'refused') {
      const from = String(rest[0]);
      if (isBalStatus(from)) assertTransition(address, from, to);
      throw new GatewayError('INTERNAL', `registry record of ${address} has unknown status`, { address });
    }
    const bal = decodeBal(pairsToRecord(rest));
    if (!bal) throw balNotFound(address);
    return { bal, reply };
  }

  readonly #plainTransition: TransitionScript = {
    script: TRANSITION_BAL,
    keys: (address) => [this.#keys.bal(address), this.#keys.counts],
    args: () => [],
    unwrap: (reply) => reply,
  };

  // Deletion also drops the mailbox's rights in the same script (rights-scripts.ts).
  readonly #deletion: TransitionScript = {
    script: DELETE_BAL,
    keys: (address) => [
      this.#keys.bal(address),
      this.#keys.counts,
      this.#keys.rights(address),
      this.#keys.rightsExpiry,
      this.#keys.lastActivity,
    ],
    args: (address) => [this.#keys.prefix, address],
    unwrap: (reply) => (reply as unknown[])[0],
  };

  /** Tells the observer; the change is committed whatever it does (bal-observer.ts). */
  async #notify(kind: BalChangeKind, bal: Bal, actor: Actor): Promise<void> {
    try {
      await this.#observer?.balChanged({ kind, bal, actor });
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      this.#journal.record({ event: 'registry.observer.failed', address: bal.address, kind, error });
    }
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
}

function checkLimit(limit: number | undefined, max = MAX_LIST_LIMIT): number {
  if (limit === undefined) return Math.min(DEFAULT_LIST_LIMIT, max);
  if (Number.isInteger(limit) && limit >= 1 && limit <= max) return limit;
  throw new GatewayError('REQUEST_INVALID', `limit must be an integer from 1 to ${max}`, {
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
