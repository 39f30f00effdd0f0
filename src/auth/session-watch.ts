import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import { principalIdentity } from './auth-events.js';
import type { Access, Channel } from './types.js';

/**
 * Rights changes reach open sessions (issue #11 item 5). A login checks the right once; an IMAP
 * session may then last hours and an SMTP session may send many messages. Each process keeps an
 * index of its open sessions by mailbox, with the principal and the right they logged in with, and
 * checks them again with the same authorisation function as the login:
 *
 * - when the registry announces a change of the mailbox on its pub/sub channel (a right granted,
 *   revoked or expired, the mailbox suspended or deleted), from any process of any node;
 * - at the instant the right used expires (one timer per session that has an expiry);
 * - for every session when the subscription (re)starts, so a change announced while this process
 *   was not listening is not missed;
 * - and on demand (SMTP: at each MAIL and at the end of DATA).
 *
 * A session found without its right is cut: IMAP gets `* BYE` with a response code and is closed,
 * SMTP refuses its next MAIL and any DATA in progress. The journal records `session.cut` with both
 * identities: the principal that acted and the mailbox with its owner.
 */

export type CutReason =
  | 'right_revoked'
  | 'right_expired'
  | 'mailbox_suspended'
  | 'mailbox_deleted'
  | 'secret_removed'
  | 'secret_replaced';

/** What the authorisation function says of an access now. */
export interface Reauthorisation {
  /** Absent: the access still holds. */
  readonly cut?: CutReason;
  /** The mailbox's owner, for the journal (absent when the mailbox is gone). */
  readonly mailboxOwner?: string;
  /** When the right found now ends, if it does (a grant renewed since the login ends later). */
  readonly expiresAt?: string;
}

export type Reauthorise = (access: Access) => Promise<Reauthorisation>;

/** One open session as the index knows it. */
export interface SessionEntry {
  readonly channel: Channel;
  readonly access: Access;
  readonly remote: string;
  /** Ends the session (IMAP: BYE and close); called once, after the cut is journaled. */
  readonly onCut?: (reason: CutReason) => void;
}

/** What a listener holds for its session. */
export interface WatchedSession {
  /** Why the session was cut, once it was. */
  readonly cut: CutReason | undefined;
  /** The right checked now (or the cut already found): before MAIL, at the end of DATA. */
  check(): Promise<CutReason | undefined>;
  /** The session ended: forget it. */
  close(): void;
}

/** What listeners need of the index (tests and listeners without a registry pass none). */
export interface SessionIndex {
  open(entry: SessionEntry): WatchedSession;
}

export interface SessionWatchOptions {
  /** A dedicated connection for SUBSCRIBE (a subscribed connection can do nothing else). */
  readonly subscriber: Redis;
  /** The registry's channel (RegistryKeys.accessChannel): mailbox addresses. */
  readonly channel: string;
  readonly reauthorise: Reauthorise;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly clock: Clock;
}

/** setTimeout's longest delay; a later expiry re-arms when it fires. */
const MAX_TIMER_MS = 2 ** 31 - 1;
/** Fired just after the expiry instant, so that the check sees the right as expired. */
const EXPIRY_MARGIN_MS = 20;

class Entry implements WatchedSession {
  cut: CutReason | undefined;
  timer: NodeJS.Timeout | undefined;
  /** The end of the right as last checked (the login's, then a renewed grant's). */
  expiresAt: string | undefined;
  #checking: Promise<CutReason | undefined> | undefined;

  constructor(
    readonly watch: SessionWatch,
    readonly session: SessionEntry,
  ) {
    this.expiresAt = session.access.expiresAt;
  }

  check(): Promise<CutReason | undefined> {
    if (this.cut !== undefined) return Promise.resolve(this.cut);
    // Concurrent triggers (a notification and a MAIL) share one evaluation.
    this.#checking ??= this.watch.evaluate(this).finally(() => (this.#checking = undefined));
    return this.#checking;
  }

  close(): void {
    this.watch.forget(this);
  }
}

export class SessionWatch implements SessionIndex {
  readonly #o: SessionWatchOptions;
  readonly #byBal = new Map<string, Set<Entry>>();
  #stopped = false;

  constructor(options: SessionWatchOptions) {
    this.#o = options;
  }

  /** Open sessions, for tests and the gauge. */
  get size(): number {
    let n = 0;
    for (const set of this.#byBal.values()) n += set.size;
    return n;
  }

  async start(): Promise<void> {
    const sub = this.#o.subscriber;
    sub.on('message', (channel: string, address: string) => {
      if (channel === this.#o.channel) void this.recheck(address);
    });
    // After a reconnection, a change may have been announced while nobody listened.
    sub.on('ready', () => void this.recheckAll());
    await sub.subscribe(this.#o.channel);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const set of this.#byBal.values()) for (const e of set) clearTimeout(e.timer);
    this.#byBal.clear();
    await this.#o.subscriber.quit().catch(() => this.#o.subscriber.disconnect());
  }

  open(session: SessionEntry): WatchedSession {
    const entry = new Entry(this, session);
    const bal = session.access.bal;
    let set = this.#byBal.get(bal);
    if (!set) this.#byBal.set(bal, (set = new Set()));
    set.add(entry);
    this.#armExpiry(entry);
    return entry;
  }

  /** Checks every open session on one mailbox (a change was announced). */
  async recheck(address: string): Promise<void> {
    const set = this.#byBal.get(address.trim().toLowerCase());
    if (!set) return;
    await Promise.all([...set].map((e) => e.check()));
  }

  async recheckAll(): Promise<void> {
    await Promise.all([...this.#byBal.keys()].map((bal) => this.recheck(bal)));
  }

  forget(entry: Entry): void {
    clearTimeout(entry.timer);
    const set = this.#byBal.get(entry.session.access.bal);
    set?.delete(entry);
    if (set?.size === 0) this.#byBal.delete(entry.session.access.bal);
  }

  /** @internal (Entry.check) The authorisation function, then the cut when it says so. */
  async evaluate(entry: Entry): Promise<CutReason | undefined> {
    let verdict: Reauthorisation;
    try {
      verdict = await this.#o.reauthorise(entry.session.access);
    } catch (err) {
      // The registry unreachable: the session keeps what it had; the next trigger checks again
      // (and an expiry instant missed this way is retried in a second).
      this.#o.logger.warn(
        { event: 'session.recheck.failed', bal: entry.session.access.bal, err: String(err) },
        'could not check an open session against the registry',
      );
      this.#rearm(entry, 1_000);
      return undefined;
    }
    if (entry.cut !== undefined) return entry.cut;
    if (verdict.cut === undefined) {
      // Still entitled: a renewed grant moves the instant to watch.
      if (verdict.expiresAt !== entry.expiresAt) {
        entry.expiresAt = verdict.expiresAt;
        this.#armExpiry(entry);
      }
      return undefined;
    }
    this.#cut(entry, verdict.cut, verdict.mailboxOwner);
    return entry.cut;
  }

  #cut(entry: Entry, reason: CutReason, mailboxOwner: string | undefined): void {
    entry.cut = reason;
    const { access, channel, remote } = entry.session;
    const event = {
      event: 'session.cut',
      channel,
      bal: access.bal,
      remote,
      reason,
      principal: principalIdentity(access.principal),
      right: access.right,
      ...(mailboxOwner === undefined ? {} : { mailboxOwner }),
      ...(access.expiresAt === undefined ? {} : { rightExpiresAt: access.expiresAt }),
    };
    this.#o.journal.record(event);
    this.#o.logger.info(event, 'open session cut: its right no longer holds');
    this.forget(entry);
    try {
      entry.session.onCut?.(reason);
    } catch (err) {
      this.#o.logger.warn({ event: 'session.cut.failed', bal: access.bal, err: String(err) }, 'cut failed');
    }
  }

  #armExpiry(entry: Entry): void {
    clearTimeout(entry.timer);
    entry.timer = undefined;
    const at = entry.expiresAt;
    if (at === undefined || this.#stopped) return;
    const delay = Date.parse(at) - this.#o.clock.now().getTime() + EXPIRY_MARGIN_MS;
    entry.timer = setTimeout(
      () => {
        if (delay > MAX_TIMER_MS) return this.#armExpiry(entry);
        void entry.check();
      },
      Math.max(0, Math.min(delay, MAX_TIMER_MS)),
    );
    entry.timer.unref();
  }

  /** A check that could not be made is made again later, if the session is still open. */
  #rearm(entry: Entry, ms: number): void {
    if (this.#stopped || !this.#byBal.get(entry.session.access.bal)?.has(entry)) return;
    if (entry.expiresAt === undefined || Date.parse(entry.expiresAt) > this.#o.clock.now().getTime()) return;
    clearTimeout(entry.timer);
    entry.timer = setTimeout(() => void entry.check(), ms);
    entry.timer.unref();
  }
}
