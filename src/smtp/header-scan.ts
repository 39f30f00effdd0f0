import { Transform, type TransformCallback } from 'node:stream';
import { type ScannedHeaders, scanHeaders } from '../delivery/index.js';

/** Body bytes held before they are passed on: one spool write for a small message, not one per TLS record. */
const BATCH_BYTES = 64 * 1024;
/** Below this average size per piece, a batch is joined into one Buffer (see #pass). */
const FRAGMENTED_BYTES = 1024;

/**
 * Passes the message through unchanged while keeping the header block (up to a limit), so that the
 * journal's Message-ID and the indicators' headers are read without a second read of the message.
 * The bytes go on in batches of up to 64 KiB (a TLS record brings at most 16 KiB), each a list of
 * the buffers received (object mode): one `writev` of the spool file per batch, and no copy of the
 * body in between (a copy into one buffer cost a large allocation and its page faults per batch).
 */
export class HeaderCapture extends Transform {
  #head: Buffer[] = [];
  #headBytes = 0;
  /** The last 3 bytes of the header section so far (its end may straddle chunks). */
  #tail = Buffer.alloc(0);
  #done = false;
  #scanned: ScannedHeaders | undefined;
  #batch: Buffer[] = [];
  #batchBytes = 0;
  readonly #limit: number;

  constructor(limit = 64 * 1024) {
    // Two batches ahead at most (each up to BATCH_BYTES and a chunk): object mode's default of 16
    // would hold ~1 MiB per DATA in flight before backpressure reaches the socket.
    super({ readableObjectMode: true, readableHighWaterMark: 2 });
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
    const batch = this.#batch;
    const bytes = this.#batchBytes;
    this.#batch = [];
    this.#batchBytes = 0;
    // A client sending tiny TLS records makes one Buffer per record: kept as they are, the pieces
    // would cost far more memory than the bytes the spool counts (its held-message budget). Such a
    // batch is joined into one Buffer; ordinary records (~16 KiB) pass without a copy.
    this.push(
      batch.length > 16 && bytes / batch.length < FRAGMENTED_BYTES ? [Buffer.concat(batch, bytes)] : batch,
    );
  }

  /** Keeps `chunk` until the blank line that ends the header section (or the limit) has been seen. */
  #capture(chunk: Buffer): void {
    this.#head.push(chunk);
    this.#headBytes += chunk.length;
    this.#scanned = undefined;
    const ended = endsHeaders(this.#tail, chunk);
    if (!ended && this.#headBytes < this.#limit) {
      this.#tail = Buffer.concat([this.#tail, chunk.subarray(-3)]).subarray(-3);
      return;
    }
    this.#done = true;
    // What comes after the limit is never scanned: a single chunk is cut without a copy.
    const head = this.#head.length === 1 ? chunk : Buffer.concat(this.#head, this.#headBytes);
    this.#head = [head.subarray(0, this.#limit)];
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

/**
 * Whether the blank line that ends the header section is in `chunk`, or straddles it and what came
 * before (`tail`, its last 3 bytes): searched in the chunk itself, then in the bytes of the seam.
 */
function endsHeaders(tail: Buffer, chunk: Buffer): boolean {
  if (chunk.includes('\r\n\r\n') || chunk.includes('\n\n')) return true;
  if (tail.length === 0) return false;
  const seam = Buffer.concat([tail, chunk.subarray(0, 3)]);
  return seam.includes('\r\n\r\n') || seam.includes('\n\n');
}
