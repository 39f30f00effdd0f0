import type { Socket } from 'node:net';
import { GatewayError } from '../errors/index.js';
import { RelayError } from './relay-error.js';

/** One SMTP reply (RFC 5321 §4.2): the code and the text of each line, without the code. */
export interface SmtpReply {
  readonly code: number;
  readonly lines: readonly string[];
  /** The last line as received, e.g. `454 4.7.0 TLS not available`, for logs and DSNs. */
  readonly raw: string;
}

/** RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets; allow slack, refuse a flood. */
const MAX_BUFFER = 64 * 1024;
const REPLY_LINE = /^(\d{3})([ -])(.*)$/;

/**
 * Reads SMTP replies from a socket, one at a time. Errors and closes fail the pending and every
 * later read, so a caller awaiting a reply never hangs on a dead connection.
 */
export class SmtpReplyReader {
  readonly #socket: Socket;
  #buffer = '';
  #lines: string[] = [];
  readonly #replies: SmtpReply[] = [];
  #waiter: { resolve: (r: SmtpReply) => void; reject: (e: Error) => void } | undefined;
  #failure: Error | undefined;
  readonly #onData = (chunk: Buffer) => this.#push(chunk.toString('latin1'));
  readonly #onEnd = () => this.fail(new RelayError('protocol_error', { reply: 'connection closed' }));
  readonly #onError = (err: Error) => this.fail(new RelayError('connect_failed', {}, { cause: err }));

  constructor(socket: Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('close', this.#onEnd);
    socket.on('error', this.#onError);
  }

  next(): Promise<SmtpReply> {
    const ready = this.#replies.shift();
    if (ready) return Promise.resolve(ready);
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#waiter)
      return Promise.reject(new GatewayError('INTERNAL', 'SmtpReplyReader: one read at a time'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
    });
  }

  fail(err: Error): void {
    if (this.#failure) return;
    this.#failure = err;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(err);
  }

  /**
   * Stops reading (before a TLS upgrade) and says whether bytes arrived beyond the last reply:
   * after `220 Ready to start TLS`, any such byte is an injection attempt (RFC 3207 §5).
   */
  detach(): { readonly unread: boolean } {
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onEnd);
    this.#socket.off('close', this.#onEnd);
    this.#socket.off('error', this.#onError);
    return { unread: this.#buffer !== '' || this.#lines.length > 0 || this.#replies.length > 0 };
  }

  #push(text: string): void {
    this.#buffer += text;
    if (this.#buffer.length > MAX_BUFFER) {
      this.fail(new RelayError('protocol_error', { reply: 'reply too long' }));
      return;
    }
    let eol: number;
    while ((eol = this.#buffer.indexOf('\n')) >= 0) {
      const line = this.#buffer.slice(0, eol).replace(/\r$/, '');
      this.#buffer = this.#buffer.slice(eol + 1);
      this.#line(line);
    }
  }

  #line(line: string): void {
    const m = REPLY_LINE.exec(line) ?? /^(\d{3})()$/.exec(line);
    if (!m) {
      this.fail(new RelayError('protocol_error', { reply: line.slice(0, 200) }));
      return;
    }
    this.#lines.push(m[3] ?? '');
    if (m[2] === '-') return;
    const reply: SmtpReply = { code: Number(m[1]), lines: this.#lines, raw: line };
    this.#lines = [];
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w) w.resolve(reply);
    else this.#replies.push(reply);
  }
}
