import { hash } from 'node:crypto';
import { closeSync, openSync, readSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

/**
 * The hash chain of the audit journal: each entry carries `seq` (1, 2, … per node), `prev` (the
 * `hash` of the node's previous entry, GENESIS for its first) and `hash` = SHA-256 over `prev`, a
 * newline and the canonical JSON of the entry without `hash` (keys sorted at every level). Editing
 * a line changes its hash; removing one breaks the next entry's `prev` and `seq`. The chain is kept
 * per node, so several processes may write one folder, each continuing its own chain across day
 * files and restarts.
 */
export const GENESIS = '0'.repeat(64);

/** The journal file of a UTC day, `audit-YYYY-MM-DD.jsonl`; the day is its name's date. */
export const JOURNAL_FILE = /^audit-(\d{4}-\d{2}-\d{2})\.jsonl$/;

export interface ChainLink {
  readonly seq: number;
  readonly hash: string;
}

/** JSON with object keys sorted at every level: one text for one value, whatever the key order. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((value as Record<string, unknown>)[k])}`);
    return `{${entries.join(',')}}`;
  }
  return JSON.stringify(value);
}

/** The hash of an entry (everything but its own `hash` field) chained to `prev`. */
export function entryHash(prev: string, entry: Readonly<Record<string, unknown>>): string {
  const { hash: _ignored, ...rest } = entry;
  return hash('sha256', `${prev}\n${canonicalJson(rest)}`, 'hex');
}

/** Journal files of a folder, oldest day first. */
export function journalFiles(dir: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  return names.filter((n) => JOURNAL_FILE.test(n)).sort();
}

/**
 * The last link a node wrote in a folder, read backwards from the newest file so that a restart
 * costs a few blocks, not a day of journal. Undefined when the node never wrote there (or all its
 * files were purged by retention): its chain starts again at GENESIS.
 */
export function lastLink(dir: string, node: string): ChainLink | undefined {
  const files = journalFiles(dir).reverse();
  for (const name of files) {
    for (const line of linesBackwards(path.join(dir, name))) {
      let entry: Record<string, unknown>;
      try {
        entry = JSON.parse(line) as Record<string, unknown>;
      } catch {
        continue; // A torn last line (a crash mid-write); verify reports it.
      }
      if (entry.node === node && typeof entry.seq === 'number' && typeof entry.hash === 'string') {
        return { seq: entry.seq, hash: entry.hash };
      }
    }
  }
  return undefined;
}

function* linesBackwards(file: string): Generator<string> {
  const size = statSync(file).size;
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(64 * 1024);
    let position = size;
    let tail = Buffer.alloc(0);
    while (position > 0) {
      const length = Math.min(chunk.length, position);
      position -= length;
      readSync(fd, chunk, 0, length, position);
      let data = Buffer.concat([chunk.subarray(0, length), tail]);
      let end = data.length;
      for (let i = data.length - 1; i >= 0; i--) {
        if (data[i] !== 0x0a) continue;
        const line = data.subarray(i + 1, end).toString('utf8');
        if (line !== '') yield line;
        end = i;
      }
      data = data.subarray(0, end);
      tail = data;
    }
    if (tail.length > 0) yield tail.toString('utf8');
  } finally {
    closeSync(fd);
  }
}
