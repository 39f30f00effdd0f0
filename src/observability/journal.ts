import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../shared/index.js';
import { GENESIS, JOURNAL_FILE, entryHash, journalFiles, lastLink } from './journal-chain.js';

/**
 * The audit journal (MSSANTE.md "Traceability"): one JSON line per security-relevant event, appended
 * to `<dataDir>/journal/audit-YYYY-MM-DD.jsonl`. Never message bodies, tokens or secrets.
 * Writes are synchronous appends (O_APPEND), so a line is complete and in the page cache when
 * `record` returns; `flush` fsyncs (called on shutdown).
 *
 * Each line is a link of its node's hash chain (journal-chain.ts): `seq`, `prev`, `hash`, so that
 * `mssgw journal verify` detects an edited or removed line. A node continues its chain across day
 * files and restarts (`pid` tells the processes apart); one writer per node and folder. Files older than the retention are deleted
 * (the journal holds personal data: it must not be kept for ever), and the deletion is journaled.
 */
export interface AuditEvent {
  /** Dotted event name from the catalogue, e.g. `smtp.mx.rejected`. */
  readonly event: string;
  readonly [field: string]: unknown;
}

/** A journal line as written: the event with its time (ISO) and node. */
export type JournalEntry = AuditEvent & { readonly time: string; readonly node: string };

/**
 * Told of each line once it is written. It must not throw nor block: the line is already in the
 * journal, and `record` is on the hot path of logins and submissions.
 */
export type JournalListener = (entry: JournalEntry) => void;

export interface AuditJournal {
  record(event: AuditEvent): void;
  flush(): void;
  close(): void;
}

export interface FileAuditJournalOptions {
  readonly dir: string;
  readonly clock: Clock;
  /** This writer's chain name (the node id); default the process id. */
  readonly node?: string;
  /** Whole UTC days of files kept besides today's; older ones are deleted. Absent: kept for ever. */
  readonly retentionDays?: number;
}

const DAY_MS = 86_400_000;

export class FileAuditJournal implements AuditJournal {
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #node: string;
  readonly #retentionDays: number | undefined;
  #day = '';
  #fd: number | undefined;
  readonly #listeners: JournalListener[] = [];
  #seq: number;
  #prev: string;

  constructor(options: FileAuditJournalOptions) {
    this.#dir = options.dir;
    this.#clock = options.clock;
    this.#node = options.node ?? `${process.pid}`;
    this.#retentionDays = options.retentionDays;
    mkdirSync(this.#dir, { recursive: true, mode: 0o750 });
    const last = lastLink(this.#dir, this.#node);
    this.#seq = last?.seq ?? 0;
    this.#prev = last?.hash ?? GENESIS;
  }

  /** Path of the journal file for a given day (YYYY-MM-DD, UTC). */
  fileFor(day: string): string {
    return path.join(this.#dir, `audit-${day}.jsonl`);
  }

  record(event: AuditEvent): void {
    const now = this.#clock.now();
    const day = now.toISOString().slice(0, 10);
    if (day !== this.#day || this.#fd === undefined) {
      if (this.#fd !== undefined) closeSync(this.#fd);
      this.#fd = openSync(this.fileFor(day), 'a', 0o640);
      this.#day = day;
      // Purged once per day: at the first record and when the day changes.
      const purged = this.#purge(now);
      if (purged.length > 0) this.#append(now, { event: 'journal.purged', files: purged });
    }
    this.#append(now, event);
  }

  #append(now: Date, event: AuditEvent): void {
    const seq = this.#seq + 1;
    // Round-tripped so that the hashed form is exactly what a reader parses back (no undefined, no Date).
    const text = JSON.stringify({
      time: now.toISOString(),
      node: this.#node,
      pid: process.pid,
      ...event,
      seq,
      prev: this.#prev,
    });
    const entry = JSON.parse(text) as Record<string, unknown>;
    const hash = entryHash(this.#prev, entry);
    const line = { ...entry, hash };
    // The line is the entry's own text with `hash` added last: what JSON.stringify(line) writes,
    // without serialising the entry a second time. An event with a field of that name (never in the
    // catalogue) is written the long way, its field taking the hash's place.
    writeSync(
      this.#fd!,
      'hash' in entry ? `${JSON.stringify(line)}\n` : `${text.slice(0, -1)},"hash":"${hash}"}\n`,
    );
    this.#seq = seq;
    this.#prev = hash;
    notify(this.#listeners, line as unknown as JournalEntry);
  }

  /** Adds a listener of every line this journal writes (e.g. a cluster-wide index in Redis). */
  onRecord(listener: JournalListener): void {
    this.#listeners.push(listener);
  }

  /** Deletes the files of days before the retention window; returns their names. */
  #purge(now: Date): string[] {
    if (this.#retentionDays === undefined) return [];
    const oldest = new Date(now.getTime() - this.#retentionDays * DAY_MS).toISOString().slice(0, 10);
    const purged: string[] = [];
    for (const name of journalFiles(this.#dir)) {
      const day = JOURNAL_FILE.exec(name)?.[1];
      if (day === undefined || day >= oldest) continue;
      rmSync(path.join(this.#dir, name), { force: true });
      purged.push(name);
    }
    return purged;
  }

  flush(): void {
    if (this.#fd !== undefined) fsyncSync(this.#fd);
  }

  close(): void {
    if (this.#fd !== undefined) {
      fsyncSync(this.#fd);
      closeSync(this.#fd);
      this.#fd = undefined;
    }
  }
}

/** Keeps events in memory: for pure-logic unit tests only. */
export class MemoryAuditJournal implements AuditJournal {
  readonly events: AuditEvent[] = [];
  readonly #listeners: JournalListener[] = [];
  readonly #clock: Clock | undefined;
  constructor(clock?: Clock) {
    this.#clock = clock;
  }
  record(event: AuditEvent): void {
    this.events.push(event);
    if (this.#listeners.length === 0) return;
    const time = (this.#clock?.now() ?? new Date()).toISOString();
    notify(this.#listeners, { time, node: 'memory', ...event });
  }
  onRecord(listener: JournalListener): void {
    this.#listeners.push(listener);
  }
  flush(): void {}
  close(): void {}
}

/** A listener's failure must not undo nor hide the line already written: it is dropped here. */
function notify(listeners: readonly JournalListener[], entry: JournalEntry): void {
  for (const listener of listeners) {
    try {
      listener(entry);
    } catch {
      // Listeners catch their own errors (see JournalListener); nothing to add to the journal.
    }
  }
}
