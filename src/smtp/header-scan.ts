import { Transform, type TransformCallback } from 'node:stream';
import { type ScannedHeaders, scanHeaders } from '../delivery/index.js';

/** Body bytes held before they are passed on: one spool write for a small message, not one per TLS record. */
const BATCH_BYTES = 64 * 1024;

/**
 * Passes the message through unchanged while keeping the header block (up to a limit), so that the
 * journal's Message-ID and the indicators' headers are read without a second read of the message.
 * The bytes go on in batches of up to 64 KiB (a TLS record brings at most 16 KiB): each piece
 * passed on is one write of the spool file.
 */
export class HeaderCapture extends Transform {
  #head: Buffer[] = [];
  #headBytes = 0;
  #done = false;
  #scanned: ScannedHeaders | undefined;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  readonly #limit: number;

  constructor(limit = 64 * 1024) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.#done) this.#capture(chunk);
    this.#batch.push(chunk);
    this.#batchBytes += chunk.length;
    if (this.#batchBytes >= BATCH_BYTES) this.#pass();
    cb();
  }

  override _flush(cb: TransformCallback): void {
    this.#pass();
    cb();
  }

  #pass(): void {
    if (this.#batchBytes === 0) return;
    const batch = this.#batch.length === 1 ? this.#batch[0]! : Buffer.concat(this.#batch, this.#batchBytes);
    this.#batch = [];
    this.#batchBytes = 0;
    this.push(batch);
  }

  /** Keeps `chunk` until the blank line that ends the header section (or the limit) has been seen. */
  #capture(chunk: Buffer): void {
    // The end may straddle two chunks: look from the last 3 bytes already held.
    const last = this.#head[this.#head.length - 1];
    const tail = last ? last.subarray(Math.max(0, last.length - 3)) : undefined;
    const window = tail?.length ? Buffer.concat([tail, chunk]) : chunk;
    this.#head.push(chunk);
    this.#headBytes += chunk.length;
    this.#scanned = undefined;
    if (window.includes('\r\n\r\n') || window.includes('\n\n') || this.#headBytes >= this.#limit) {
      this.#done = true;
      this.#head = [Buffer.concat(this.#head, this.#headBytes).subarray(0, this.#limit)];
    }
  }

  /** A header's unfolded value, or undefined. */
  header(name: string): string | undefined {
    return this.headers().value(name);
  }

  /** The captured header section, scanned (once: the submission checks and the envelope share it). */
  headers(): ScannedHeaders {
    this.#scanned ??= scanHeaders(this.#head.length === 1 ? this.#head[0]! : Buffer.concat(this.#head));
    return this.#scanned;
  }
}
