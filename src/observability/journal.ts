import { closeSync, fsyncSync, mkdirSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from '../shared/index.js';

/**
 * The audit journal (MSSANTE.md "Traceability"): one JSON line per security-relevant event, appended
 * to `<dataDir>/journal/audit-YYYY-MM-DD.jsonl`. Never message bodies, tokens or secrets.
 * Writes are synchronous appends (O_APPEND), so a line is complete and in the page cache when
 * `record` returns; `flush` fsyncs (called on shutdown).
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

export class FileAuditJournal implements AuditJournal {
  readonly #dir: string;
  readonly #clock: Clock;
  readonly #node: string;
  #day = '';
  #fd: number | undefined;
  readonly #listeners: JournalListener[] = [];

  constructor(options: { dir: string; clock: Clock; node?: string }) {
    this.#dir = options.dir;
    this.#clock = options.clock;
    this.#node = options.node ?? `${process.pid}`;
    mkdirSync(this.#dir, { recursive: true, mode: 0o750 });
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
    }
    const entry: JournalEntry = { time: now.toISOString(), node: this.#node, ...event };
    writeSync(this.#fd, JSON.stringify(entry) + '\n');
    notify(this.#listeners, entry);
  }

  /** Adds a listener of every line this journal writes (e.g. a cluster-wide index in Redis). */
  onRecord(listener: JournalListener): void {
    this.#listeners.push(listener);
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
