import type { Socket } from 'node:net';
import { GatewayError } from '../errors/index.js';

/**
 * The byte-level parts of the LMTP client: reading replies (RFC 5321 §4.2, multi-line with
 * "ddd-", enhanced status codes per RFC 2034) and encoding the message for DATA (RFC 5321 §4.5.2).
 * No protocol decisions here.
 */

export interface LmtpReply {
  readonly code: number;
  /** RFC 3463 code when the server sent one (Dovecot does: ENHANCEDSTATUSCODES). */
  readonly enhancedCode?: string;
  /** Reply text without code and enhanced code; lines of a multi-line reply joined by '\n'. */
  readonly text: string;
  /** Text of each line (for LHLO: the extension keywords). */
  readonly lines: readonly string[];
}

/** Why a session ended early; picks the enhanced code of the synthesised temporary results. */
export type LmtpFailureKind = 'connect' | 'timeout' | 'closed' | 'protocol';

export class LmtpConnectionError extends GatewayError {
  readonly kind: LmtpFailureKind;
  constructor(kind: LmtpFailureKind, message: string, options?: ErrorOptions) {
    super('STORE_UNAVAILABLE', message, { kind }, options);
    this.name = 'LmtpConnectionError';
    this.kind = kind;
  }
}

const MAX_LINE_BYTES = 64 * 1024;
const REPLY_LINE = /^(\d{3})([ -])(.*)$/s;
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

function parseReply(raw: readonly { code: number; text: string }[]): LmtpReply {
  const code = raw[0]?.code ?? 0;
  let enhancedCode: string | undefined;
  const lines = raw.map(({ text }) => {
    const m = ENHANCED.exec(text);
    // Only a code of the reply's own class is an enhanced status code (RFC 2034 §4).
    if (!m || m[1] !== String(code)[0]) return text;
    enhancedCode ??= `${m[1]}.${m[2]}.${m[3]}`;
    return text.slice(m[0].length);
  });
  const reply = { code, text: lines.join('\n'), lines };
  return enhancedCode === undefined ? reply : { ...reply, enhancedCode };
}

/** Queues the replies the server sends; `next()` takes them in order. */
export class ReplyReader {
  #buffer: Buffer = Buffer.alloc(0);
  #pending: { code: number; text: string }[] = [];
  readonly #replies: LmtpReply[] = [];
  #waiter: { resolve: (r: LmtpReply) => void; reject: (e: Error) => void } | undefined;
  #failure: LmtpConnectionError | undefined;
  #connected = false;

  constructor(socket: Socket) {
    socket.once('connect', () => (this.#connected = true));
    socket.on('data', (chunk: Buffer) => this.#push(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      const kind = this.#connected ? 'closed' : 'connect';
      this.fail(new LmtpConnectionError(kind, err.code ?? err.message, { cause: err }));
    });
    socket.on('close', () => this.fail(new LmtpConnectionError('closed', 'connection closed by the store')));
  }

  /** The next complete reply; rejects once the connection failed and no reply is left. */
  next(): Promise<LmtpReply> {
    const reply = this.#replies.shift();
    if (reply) return Promise.resolve(reply);
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** Why the connection ended, once it has. */
  get failure(): LmtpConnectionError | undefined {
    return this.#failure;
  }

  /**
   * Whether bytes arrived that no command asked for (an idle connection the store is closing says
   * why first): such a connection is out of step and must not carry another transaction.
   */
  get unsolicited(): boolean {
    return this.#replies.length > 0 || this.#pending.length > 0 || this.#buffer.length > 0;
  }

  /** The first failure wins: a timeout stays a timeout when the close follows. */
  fail(error: LmtpConnectionError): void {
    this.#failure ??= error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(this.#failure);
  }

  #push(chunk: Buffer): void {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    for (let eol = this.#buffer.indexOf(0x0a); eol >= 0; eol = this.#buffer.indexOf(0x0a)) {
      const line = this.#buffer.subarray(0, eol).toString('utf8').replace(/\r$/, '');
      this.#buffer = this.#buffer.subarray(eol + 1);
      this.#line(line);
    }
    if (this.#buffer.length > MAX_LINE_BYTES) {
      this.fail(new LmtpConnectionError('protocol', 'reply line too long'));
    }
  }

  #line(line: string): void {
    const m = REPLY_LINE.exec(line);
    if (!m) {
      this.fail(new LmtpConnectionError('protocol', `malformed reply line: ${line.slice(0, 80)}`));
      return;
    }
    this.#pending.push({ code: Number(m[1]), text: m[3] ?? '' });
    if (m[2] === '-') return;
    const reply = parseReply(this.#pending);
    this.#pending = [];
    const waiter = this.#waiter;
    this.#waiter = undefined;
    if (waiter) waiter.resolve(reply);
    else this.#replies.push(reply);
  }
}

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;
const CRLF = Buffer.from('\r\n');

/**
 * Encodes message bytes for DATA: a '.' starting a line is doubled (RFC 5321 §4.5.2), and bare CR
 * or LF become CRLF (a lone one must not be sent, §2.3.8). A message that already uses CRLF goes
 * through unchanged apart from the stuffing, which the server removes: stored bytes equal the
 * input. Stateful, so a chunk boundary may fall anywhere.
 */
export class DotStuffer {
  #atLineStart = true;
  #pendingCr = false;

  encode(chunk: Buffer): Buffer {
    const out = Buffer.allocUnsafe(chunk.length * 2 + 2);
    let n = 0;
    for (const byte of chunk) {
      if (this.#pendingCr) {
        this.#pendingCr = false;
        out[n++] = CR;
        out[n++] = LF;
        this.#atLineStart = true;
        if (byte === LF) continue;
      }
      if (byte === CR) {
        this.#pendingCr = true;
      } else if (byte === LF) {
        out[n++] = CR;
        out[n++] = LF;
        this.#atLineStart = true;
      } else {
        if (this.#atLineStart && byte === DOT) out[n++] = DOT;
        out[n++] = byte;
        this.#atLineStart = false;
      }
    }
    return out.subarray(0, n);
  }

  /** Ends the last line if needed, then the terminating ".". */
  end(): Buffer {
    const tail: Buffer[] = [];
    if (this.#pendingCr || !this.#atLineStart) tail.push(CRLF);
    this.#pendingCr = false;
    this.#atLineStart = true;
    tail.push(Buffer.from('.\r\n'));
    return Buffer.concat(tail);
  }
}
