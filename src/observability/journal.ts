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
    const line = JSON.stringify({ time: now.toISOString(), node: this.#node, ...event }) + '\n';
    writeSync(this.#fd, line);
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
  record(event: AuditEvent): void {
    this.events.push(event);
  }
  flush(): void {}
  close(): void {}
}
