import { createReadStream, existsSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';

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

/** Days of journal shown (issue #13: "over the last 90 days"). */
export const USAGE_DAYS = 90;

/** Uses kept per page, newest first: the page stays readable however busy the mailbox. */
const MAX_USES = 500;

const DAY_MS = 86_400_000;

interface JournalLine {
  readonly time?: string;
  readonly event?: string;
  readonly bal?: string;
  readonly right?: string;
  readonly channel?: string;
  readonly principal?: { readonly nationalId?: string; readonly dn?: string };
}

/**
 * Delegated and member uses of the given mailboxes, read from the audit journal files of this node
 * (`<dataDir>/journal/audit-YYYY-MM-DD.jsonl`, one per UTC day) for the last 90 days: a successful
 * authentication (`auth.succeeded`) is a login, an accepted submission (`smtp.submission.accepted`)
 * a sending. The journal names both identities for every right other than owner (ARCHITECTURE.md
 * §4), so nothing else needs recording. Files are streamed line by line.
 */
export async function readMailboxUses(
  journalDir: string,
  mailboxes: ReadonlySet<string>,
  now: Date,
): Promise<MailboxUse[]> {
  if (mailboxes.size === 0) return [];
  const uses: MailboxUse[] = [];
  const since = now.getTime() - USAGE_DAYS * DAY_MS;
  for (let d = 0; d <= USAGE_DAYS; d++) {
    const day = new Date(now.getTime() - d * DAY_MS).toISOString().slice(0, 10);
    const file = path.join(journalDir, `audit-${day}.jsonl`);
    if (!existsSync(file)) continue;
    const lines = createInterface({ input: createReadStream(file, 'utf8'), crlfDelay: Infinity });
    for await (const text of lines) {
      // Cheap filter before parsing: most lines are of other events.
      if (!text.includes('"auth.succeeded"') && !text.includes('"smtp.submission.accepted"')) continue;
      const use = useOf(text, mailboxes);
      if (use !== undefined && Date.parse(use.at) >= since) uses.push(use);
    }
  }
  return uses.sort((a, b) => (a.at < b.at ? 1 : a.at > b.at ? -1 : 0)).slice(0, MAX_USES);
}

function useOf(text: string, mailboxes: ReadonlySet<string>): MailboxUse | undefined {
  let line: JournalLine;
  try {
    line = JSON.parse(text) as JournalLine;
  } catch {
    return undefined;
  }
  const { time, event, bal, right, principal } = line;
  if (time === undefined || bal === undefined || right === undefined || right === 'owner') return undefined;
  if (!mailboxes.has(bal.toLowerCase())) return undefined;
  const who = principal?.nationalId ?? principal?.dn ?? '?';
  if (event === 'auth.succeeded') {
    return { at: time, bal, who, right, action: 'login', channel: line.channel ?? '?' };
  }
  if (event === 'smtp.submission.accepted') {
    return { at: time, bal, who, right, action: 'send', channel: 'submission' };
  }
  return undefined;
}
