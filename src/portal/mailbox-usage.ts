import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { GatewayError } from '../errors/index.js';
import type { JournalEntry, JournalListener, Logger } from '../observability/index.js';

/** One use of a mailbox by someone other than its owner ("qui a utilisé ma boîte"). */
export interface MailboxUse {
  readonly at: string;
  readonly bal: string;
  /** National id of the person, or the certificate DN of software. */
  readonly who: string;
  readonly right: string;
  readonly action: 'login' | 'send';
  readonly channel: string;
}

/** Days of uses kept and shown (issue #13: "over the last 90 days"). */
export const USAGE_DAYS = 90;

/** Uses kept per mailbox, newest first: memory stays bounded however busy the mailbox. */
export const MAX_USES = 500;

const DAY_MS = 86_400_000;

export interface MailboxUsesOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
}

/** One sorted set per mailbox, scored by the use's time (ms): every node writes and reads the same. */
export function usesKey(prefix: string, bal: string): string {
  return `${prefix}portal:uses:${bal.toLowerCase()}`;
}

/**
 * The journal listener that makes "qui a utilisé ma boîte" whole across nodes: each node journals
 * its own logins and submissions in its own files, so each also adds the delegated and member ones
 * to the mailbox's sorted set in the shared Redis, from the very line it journals (one event, one
 * rule: `auth.succeeded` is a login, `smtp.submission.accepted` a sending, the owner's own uses are
 * not listed). Uses older than 90 days and beyond the newest 500 are trimmed at each write, and the
 * key expires 90 days after the last use. The write is not awaited (the journal's `record` is
 * synchronous, on the login path): a Redis failure is logged, the journal file still holds the use.
 */
export function recordMailboxUses(
  options: MailboxUsesOptions & { readonly logger: Logger },
): JournalListener {
  const { redis, prefix, logger } = options;
  return (entry) => {
    const use = mailboxUseOf(entry);
    if (use === undefined) return;
    const atMs = Date.parse(use.at);
    const key = usesKey(prefix, use.bal);
    // A random tag keeps two identical uses in the same millisecond as two members.
    const member = JSON.stringify({ ...use, tag: randomBytes(6).toString('base64url') });
    redis
      .multi()
      .zadd(key, atMs, member)
      .zremrangebyscore(key, '-inf', `(${atMs - USAGE_DAYS * DAY_MS}`)
      .zremrangebyrank(key, 0, -(MAX_USES + 1))
      .pexpire(key, USAGE_DAYS * DAY_MS)
      .exec()
      .then((replies) => {
        const failed = replies?.find(([err]) => err !== null)?.[0];
        if (replies === null || failed) throw failed ?? new GatewayError('INTERNAL', 'transaction discarded');
      })
      .catch((err: unknown) =>
        logger.warn(
          { event: 'portal.uses.write_failed', bal: use.bal, err: (err as Error).message },
          'mailbox use not indexed in Redis (still in the journal file)',
        ),
      );
  };
}

/** Delegated and member uses of the given mailboxes over the last 90 days, newest first, all nodes. */
export async function readMailboxUses(
  options: MailboxUsesOptions,
  mailboxes: ReadonlySet<string>,
  now: Date,
): Promise<MailboxUse[]> {
  if (mailboxes.size === 0) return [];
  const since = now.getTime() - USAGE_DAYS * DAY_MS;
  const pipeline = options.redis.pipeline();
  for (const bal of mailboxes) {
    pipeline.zrevrangebyscore(usesKey(options.prefix, bal), '+inf', since, 'LIMIT', 0, MAX_USES);
  }
  const replies = (await pipeline.exec()) ?? [];
  const uses: MailboxUse[] = [];
  for (const [err, members] of replies) {
    if (err) throw err;
    for (const member of members as string[]) {
      const use = parseUse(member);
      if (use !== undefined) uses.push(use);
    }
  }
  return uses.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, MAX_USES);
}

function parseUse(member: string): MailboxUse | undefined {
  try {
    const { at, bal, who, right, action, channel } = JSON.parse(member) as MailboxUse;
    return { at, bal, who, right, action, channel };
  } catch {
    return undefined;
  }
}

/** The use a journal line records, if it is a login or a sending by someone other than the owner. */
export function mailboxUseOf(entry: JournalEntry): MailboxUse | undefined {
  const { time, event } = entry;
  const bal = typeof entry.bal === 'string' ? entry.bal.toLowerCase() : undefined;
  const right = typeof entry.right === 'string' ? entry.right : undefined;
  if (bal === undefined || right === undefined || right === 'owner') return undefined;
  const principal = (entry.principal ?? {}) as { nationalId?: string; dn?: string };
  const who = principal.nationalId ?? principal.dn ?? '?';
  if (event === 'auth.succeeded') {
    const channel = typeof entry.channel === 'string' ? entry.channel : '?';
    return { at: time, bal, who, right, action: 'login', channel };
  }
  if (event === 'smtp.submission.accepted') {
    return { at: time, bal, who, right, action: 'send', channel: 'submission' };
  }
  return undefined;
}
