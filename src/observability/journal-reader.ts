import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { GENESIS, JOURNAL_FILE, entryHash, journalFiles } from './journal-chain.js';

/** One line of a journal folder, where it was read. */
export interface JournalLine {
  readonly file: string;
  /** 1-based line number in its file. */
  readonly line: number;
  readonly text: string;
}

/** Every line of a journal folder, oldest file first, streamed. */
export async function* journalLines(dir: string): AsyncGenerator<JournalLine> {
  for (const file of journalFiles(dir)) {
    const input = createReadStream(path.join(dir, file), 'utf8');
    const lines = createInterface({ input, crlfDelay: Infinity });
    let line = 0;
    for await (const text of lines) {
      line += 1;
      yield { file, line, text };
    }
  }
}

export interface BrokenEntry {
  readonly file: string;
  readonly line: number;
  readonly node?: string;
  readonly seq?: number;
  readonly reason: string;
}

export interface VerifyReport {
  readonly files: number;
  readonly entries: number;
  /** Last seq of each node's chain. */
  readonly nodes: Readonly<Record<string, number>>;
  /** In file order: the first one is where tampering (or a torn write) begins. */
  readonly broken: readonly BrokenEntry[];
}

/**
 * Checks every node's chain in a journal folder. A chain may begin after seq 1 only in the oldest
 * file kept or once the journal has purged files (retention): the entries before are gone on
 * purpose. Limits: removing the newest entries of a chain, or the oldest entries of the oldest file,
 * looks like a chain that ended or began there.
 */
export async function verifyJournal(dir: string): Promise<VerifyReport> {
  const chains = new Map<string, { seq: number; hash: string }>();
  const broken: BrokenEntry[] = [];
  const oldest = journalFiles(dir)[0];
  let files = 0;
  let entries = 0;
  let lastFile = '';
  let purged = false;
  for await (const { file, line, text } of journalLines(dir)) {
    if (file !== lastFile) {
      files += 1;
      lastFile = file;
    }
    entries += 1;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(text) as Record<string, unknown>;
    } catch {
      broken.push({ file, line, reason: 'not a JSON object (edited, or torn by a crash mid-write)' });
      continue;
    }
    const { node, seq, prev, hash } = entry;
    if (
      typeof node !== 'string' ||
      typeof seq !== 'number' ||
      typeof prev !== 'string' ||
      typeof hash !== 'string'
    ) {
      broken.push({ file, line, reason: 'no chain fields (node, seq, prev, hash)' });
      continue;
    }
    const at = { file, line, node, seq };
    if (entryHash(prev, entry) !== hash) {
      broken.push({ ...at, reason: 'edited: its hash does not match its content' });
    }
    const before = chains.get(node);
    if (before === undefined) {
      const startsLate = seq !== 1 || prev !== GENESIS;
      if (startsLate && file !== oldest && !purged) {
        broken.push({ ...at, reason: `chain of node ${node} begins at seq ${seq}: earlier entries removed` });
      }
    } else if (seq !== before.seq + 1 || prev !== before.hash) {
      const missing = seq > before.seq + 1 ? `, ${seq - before.seq - 1} entries missing before it` : '';
      broken.push({
        ...at,
        reason: `does not follow seq ${before.seq} of node ${node} (expected seq ${before.seq + 1}${missing})`,
      });
    }
    // Follow the chain from this entry, so that one removal is reported once, not at every later line.
    chains.set(node, { seq, hash });
    if (entry.event === 'journal.purged') purged = true;
  }
  return { files, entries, nodes: Object.fromEntries([...chains].map(([n, c]) => [n, c.seq])), broken };
}

export interface JournalQuery {
  /** Entries naming this mailbox in any field (case-insensitive). */
  readonly mailbox?: string;
  /** Entries naming this person (national id) in any field. */
  readonly person?: string;
  /** Event name, or a prefix ending in `.` (`auth.` for every authentication event). */
  readonly event?: string;
  readonly since?: Date;
  readonly until?: Date;
  /** Entries whose line contains this text (a spool id, a job id): a cheap filter before parsing. */
  readonly contains?: string;
}

/** Entries matching every given criterion, oldest first; files outside the time range are skipped. */
export async function* searchJournal(
  dir: string,
  query: JournalQuery,
): AsyncGenerator<Readonly<Record<string, unknown>>> {
  const sinceDay = query.since?.toISOString().slice(0, 10);
  const untilDay = query.until?.toISOString().slice(0, 10);
  const mailbox = query.mailbox?.toLowerCase();
  for await (const { file, text } of journalLines(dir)) {
    const day = JOURNAL_FILE.exec(file)?.[1] ?? '';
    if ((sinceDay !== undefined && day < sinceDay) || (untilDay !== undefined && day > untilDay)) continue;
    // Cheap filters on the text before parsing: most lines are of other mailboxes.
    if (mailbox !== undefined && !text.toLowerCase().includes(mailbox)) continue;
    if (query.person !== undefined && !text.includes(query.person)) continue;
    if (query.contains !== undefined && !text.includes(query.contains)) continue;
    let entry: Record<string, unknown>;
    try {
      entry = JSON.parse(text) as Record<string, unknown>;
    } catch {
      continue; // verify reports it.
    }
    if (matches(entry, query, mailbox)) yield entry;
  }
}

function matches(entry: Record<string, unknown>, query: JournalQuery, mailbox: string | undefined): boolean {
  const event = typeof entry.event === 'string' ? entry.event : '';
  if (query.event !== undefined) {
    const ok = query.event.endsWith('.') ? event.startsWith(query.event) : event === query.event;
    if (!ok) return false;
  }
  const time = typeof entry.time === 'string' ? Date.parse(entry.time) : NaN;
  if (query.since !== undefined && !(time >= query.since.getTime())) return false;
  if (query.until !== undefined && !(time <= query.until.getTime())) return false;
  if (mailbox !== undefined && !someString(entry, (s) => s.toLowerCase() === mailbox)) return false;
  if (query.person !== undefined && !someString(entry, (s) => s === query.person)) return false;
  return true;
}

/** True when a string anywhere in the value (arrays and objects included) satisfies `test`. */
function someString(value: unknown, test: (s: string) => boolean): boolean {
  if (typeof value === 'string') return test(value);
  if (Array.isArray(value)) return value.some((v) => someString(v, test));
  if (value !== null && typeof value === 'object')
    return Object.values(value).some((v) => someString(v, test));
  return false;
}
