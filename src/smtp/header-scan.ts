import { Transform, type TransformCallback } from 'node:stream';

/**
 * Passes the message through untouched while keeping the header block (up to a limit), so that the
 * journal can record the Message-ID without a second read of the message.
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
    const text = Buffer.concat(this.#head).toString('latin1');
    const end = text.search(/\r?\n\r?\n/);
    const head = (end >= 0 ? text.slice(0, end) : text).replace(/\r?\n[ \t]+/g, ' ');
    const re = new RegExp(`^${name.replace(/[-]/g, '\\-')}:[ \\t]*(.*)$`, 'im');
    return re.exec(head)?.[1]?.trim();
  }
}
