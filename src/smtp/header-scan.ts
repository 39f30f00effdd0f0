import { Transform, type TransformCallback } from 'node:stream';
import { type ScannedHeaders, scanHeaders } from '../delivery/index.js';

/**
 * Passes the message through untouched while keeping the header block (up to a limit), so that the
 * journal's Message-ID and the indicators' headers are read without a second read of the message.
 */
export class HeaderCapture extends Transform {
  #head: Buffer[] = [];
  #headBytes = 0;
  #done = false;
  readonly #limit: number;

  constructor(limit = 64 * 1024) {
    super();
    this.#limit = limit;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!this.#done) {
      this.#head.push(chunk);
      this.#headBytes += chunk.length;
      const joined = Buffer.concat(this.#head);
      if (joined.includes('\r\n\r\n') || joined.includes('\n\n') || this.#headBytes >= this.#limit) {
        this.#done = true;
        this.#head = [joined.subarray(0, this.#limit)];
      }
    }
    cb(null, chunk);
  }

  /** A header's unfolded value, or undefined. */
  header(name: string): string | undefined {
    return this.headers().value(name);
  }

  /** The captured header section, scanned. */
  headers(): ScannedHeaders {
    return scanHeaders(Buffer.concat(this.#head));
  }
}
