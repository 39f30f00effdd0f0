import type { Redis } from 'ioredis';
import type { Right, Scope } from './access.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal } from '../observability/index.js';
import { actorLabel, type Actor } from './actor.js';
import { normalisePersonId, type Bal, type BalStatus, type BalType } from './bal.js';
import { decodeBal } from './bal-record.js';
import { balNotFound, callRedis, pipelineReplies } from './redis-call.js';
import type { RegistryKeys } from './registry-keys.js';
import { decodeGrant, subjectFromKey } from './grant-record.js';
import {
  SCOPES,
  isGrantExpired,
  parseCertificateDn,
  parseGrantRequest,
  parseGrantSubject,
  subjectKey,
  type Grant,
  type GrantRequest,
  type GrantSubject,
  type SubjectRequest,
} from './rights.js';
import { GRANT_RIGHT, REVOKE_RIGHT } from './rights-scripts.js';

/** A stored grant as the API shows it. */
export interface GrantView extends Grant {
  readonly address: string;
  /** True from `expiresAt` on, until the purge removes it. */
  readonly expired: boolean;
}

/** One mailbox a person or certificate may open ("which BALs may this person open"). */
export interface AccessibleBal {
  /** The mailbox address. */
  readonly bal: string;
  readonly type: BalType;
  readonly status: BalStatus;
  readonly right: Right;
  readonly scopes: Scope[];
  readonly expiresAt?: string;
}

export interface RightsStoreOptions {
  readonly redis: Redis;
  readonly keys: RegistryKeys;
  readonly journal: AuditJournal;
}

// Expired grants removed per round trip of the purge.
const PURGE_BATCH = 200;
const SYSTEM: Actor = { kind: 'system', id: 'rights-expiry' };

/**
 * Grants on mailboxes in Redis (layout in registry-keys.ts): one hash per mailbox, a reverse index per
 * person and per certificate, and an expiry index for the purge, changed together by the scripts of
 * rights-scripts.ts. BalRegistry composes it; the validation rules are in rights.ts.
 */
export class RightsStore {
  readonly #redis: Redis;
  readonly #keys: RegistryKeys;
  readonly #journal: AuditJournal;

  constructor(options: RightsStoreOptions) {
    this.#redis = options.redis;
    this.#keys = options.keys;
    this.#journal = options.journal;
  }

  /** Validates and stores a grant, replacing the subject's previous grant on that mailbox if any. */
  async grant(bal: Bal, request: GrantRequest, actor: Actor, now: Date): Promise<GrantView> {
    const parsed = parseGrantRequest(bal, request, now);
    const grant: Grant = { ...parsed, grantedBy: actorLabel(actor), grantedAt: now.toISOString() };
    const field = subjectKey(grant.subject);
    const expiryMs = grant.expiresAt === undefined ? '' : String(Date.parse(grant.expiresAt));
    const reply = (await callRedis(() =>
      GRANT_RIGHT.run(
        this.#redis,
        [
          this.#keys.bal(bal.address),
          this.#keys.rights(bal.address),
          this.#reverseKey(grant.subject),
          this.#keys.rightsExpiry,
        ],
        [bal.address, field, JSON.stringify(grant), expiryMs],
      ),
    )) as [string, string | null];
    if (reply[0] === 'missing') throw balNotFound(bal.address);
    if (reply[0] === 'deleted') {
      throw new GatewayError(
        'BAL_INVALID_TRANSITION',
        `${bal.address} is deleted; it cannot be granted rights`,
        {
          address: bal.address,
        },
      );
    }
    const previous = reply[1] === null ? undefined : decodeGrant(reply[1], bal.address);
    this.#journalGrant('registry.right.granted', bal.address, grant, actor, {
      ...(previous === undefined ? {} : { replaced: { right: previous.right, scopes: previous.scopes } }),
    });
    return { address: bal.address, ...grant, expired: false };
  }

  /** Removes the subject's grant on the mailbox (any status, so a leftover can always be cleaned). */
  async revoke(address: string, request: SubjectRequest, actor: Actor, now: Date): Promise<GrantView> {
    const subject = parseGrantSubject(request);
    const removed = await this.#remove(address, subject, '');
    if (removed === undefined) {
      throw new GatewayError('RIGHT_NOT_FOUND', `${describeSubject(subject)} holds no right on ${address}`, {
        address,
      });
    }
    this.#journalGrant('registry.right.revoked', address, removed, actor, {});
    return { address, ...removed, expired: isGrantExpired(removed, now) };
  }

  /**
   * Every grant on the mailbox, expired ones included and flagged, by right then subject. One round
   * trip (the authentication path calls it); BAL_NOT_FOUND when there is no such mailbox.
   */
  async list(address: string, now: Date): Promise<GrantView[]> {
    const pipeline = this.#redis
      .pipeline()
      .hexists(this.#keys.bal(address), 'status')
      .hgetall(this.#keys.rights(address));
    const [exists, hash] = pipelineReplies(await callRedis(() => pipeline.exec())) as [
      number,
      Record<string, string>,
    ];
    if (exists !== 1) throw balNotFound(address);
    return Object.entries(hash)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([, json]) => decodeGrant(json, address))
      .sort((a, b) => RIGHT_ORDER.indexOf(a.right) - RIGHT_ORDER.indexOf(b.right))
      .map((grant) => ({ address, ...grant, expired: isGrantExpired(grant, now) }));
  }

  /** PER mailboxes the person owns and every live grant they hold, deleted mailboxes left out. */
  async balsForPerson(input: string, now: Date): Promise<AccessibleBal[]> {
    const nationalId = normalisePersonId(input);
    if (nationalId === null) {
      throw new GatewayError(
        'RIGHT_INVALID',
        `"${input}" is not a national person id: 8 + RPPS (12 digits) or 0 + ADELI (10 characters)`,
        { person: input },
      );
    }
    const subject: GrantSubject = { kind: 'person', nationalId };
    const pipeline = this.#redis
      .pipeline()
      .smembers(this.#keys.personOwns(nationalId))
      .smembers(this.#reverseKey(subject));
    const [owned, granted] = pipelineReplies(await callRedis(() => pipeline.exec())) as [string[], string[]];
    const isOwner = (bal: Bal) => bal.type === 'PER' && bal.owner === nationalId;
    return this.#accessible([...owned, ...granted], subjectKey(subject), isOwner, now);
  }

  /** Mailboxes a certificate (any DN spelling) is bound to by a live application grant. */
  async balsForCertificate(dn: string, now: Date): Promise<AccessibleBal[]> {
    const subject: GrantSubject = { kind: 'certificate', dn: parseCertificateDn(dn) };
    const addresses = await callRedis(() => this.#redis.smembers(this.#reverseKey(subject)));
    return this.#accessible(addresses, subjectKey(subject), () => false, now);
  }

  async #accessible(
    candidates: readonly string[],
    field: string,
    isOwner: (bal: Bal) => boolean,
    now: Date,
  ): Promise<AccessibleBal[]> {
    const addresses = [...new Set(candidates)].sort();
    if (addresses.length === 0) return [];
    const pipeline = this.#redis.pipeline();
    for (const address of addresses) {
      pipeline.hgetall(this.#keys.bal(address)).hget(this.#keys.rights(address), field);
    }
    const replies = pipelineReplies(await callRedis(() => pipeline.exec()));
    const out: AccessibleBal[] = [];
    for (const [i, address] of addresses.entries()) {
      const bal = decodeBal(replies[2 * i] as Record<string, string>);
      if (!bal || bal.status === 'deleted') continue;
      const base = { bal: address, type: bal.type, status: bal.status };
      if (isOwner(bal)) {
        out.push({ ...base, right: 'owner', scopes: [...SCOPES] });
        continue;
      }
      const json = replies[2 * i + 1] as string | null;
      const grant = json === null ? undefined : decodeGrant(json, address);
      if (grant === undefined || isGrantExpired(grant, now)) continue;
      const { right, scopes, expiresAt } = grant;
      out.push({ ...base, right, scopes, ...(expiresAt === undefined ? {} : { expiresAt }) });
    }
    return out;
  }

  /** Removes every grant expired at `now`, journaling each as `registry.right.expired`. */
  async purgeExpired(now: Date): Promise<GrantView[]> {
    const purged: GrantView[] = [];
    const seen = new Set<string>();
    for (;;) {
      const members = await callRedis(() =>
        this.#redis.zrangebyscore(this.#keys.rightsExpiry, '-inf', now.getTime(), 'LIMIT', 0, PURGE_BATCH),
      );
      const fresh = members.filter((m) => !seen.has(m));
      for (const member of fresh) {
        seen.add(member);
        const space = member.indexOf(' ');
        const address = member.slice(0, space);
        const removed = await this.#remove(
          address,
          subjectFromKey(member.slice(space + 1)),
          String(now.getTime()),
        );
        if (removed === undefined) continue;
        this.#journalGrant('registry.right.expired', address, removed, SYSTEM, {});
        purged.push({ address, ...removed, expired: true });
      }
      // Every member read is removed (or renewed to a later score), so a batch never repeats unless
      // something rewrites the index under us: then stop rather than loop.
      if (members.length < PURGE_BATCH || fresh.length === 0) return purged;
    }
  }

  /** Journals the grants the deletion of a mailbox dropped (DELETE_BAL's second reply). */
  journalDropped(address: string, dropped: readonly string[], actor: Actor): void {
    for (const json of dropped) {
      const grant = decodeGrant(json, address);
      this.#journalGrant('registry.right.revoked', address, grant, actor, { reason: 'mailbox deleted' });
    }
  }

  async #remove(address: string, subject: GrantSubject, expiredBy: string): Promise<Grant | undefined> {
    const json = (await callRedis(() =>
      REVOKE_RIGHT.run(
        this.#redis,
        [this.#keys.rights(address), this.#reverseKey(subject), this.#keys.rightsExpiry],
        [address, subjectKey(subject), expiredBy],
      ),
    )) as string | null;
    return json === null ? undefined : decodeGrant(json, address);
  }

  #reverseKey(subject: GrantSubject): string {
    return subject.kind === 'person'
      ? this.#keys.personBals(subject.nationalId)
      : this.#keys.certificateBals(subject.dn);
  }

  #journalGrant(
    event: string,
    address: string,
    grant: Grant,
    actor: Actor,
    extra: Record<string, unknown>,
  ): void {
    this.#journal.record({
      event,
      address,
      right: grant.right,
      subject: grant.subject,
      scopes: grant.scopes,
      ...(grant.expiresAt === undefined ? {} : { expiresAt: grant.expiresAt }),
      actor,
      ...extra,
    });
  }
}

const RIGHT_ORDER: readonly Right[] = ['owner', 'manager', 'member', 'delegate', 'application'];

function describeSubject(subject: GrantSubject): string {
  return subject.kind === 'person' ? `person ${subject.nationalId}` : `certificate "${subject.dn}"`;
}
