import type { Socket } from 'node:net';
import { GatewayError } from '../errors/index.js';

/**
 * The byte-level client side of SMTP and LMTP, shared by the relay and local delivery: reading
 * replies (RFC 5321 §4.2, multi-line with "ddd-", enhanced status codes per RFC 2034) and encoding
 * the message for DATA (RFC 5321 §4.5.2). No protocol decisions here.
 */

export interface WireReply {
  readonly code: number;
  /** RFC 3463 code when the server sent one (ENHANCEDSTATUSCODES). */
  readonly enhancedCode?: string;
  /** Reply text without code and enhanced code; lines of a multi-line reply joined by '\n'. */
  readonly text: string;
  /** Text of each line without code and enhanced code (for EHLO/LHLO: the extension keywords). */
  readonly lines: readonly string[];
  /** The last line as received, e.g. `454 4.7.0 TLS not available`, for logs and DSNs. */
  readonly raw: string;
}

/**
 * Why a reader stopped: `connect` (the socket failed before connecting), `broken` (a socket error
 * after), `closed` (the peer closed), `protocol` (a line that is no reply, or one too long).
 */
export type WireFailureKind = 'connect' | 'broken' | 'closed' | 'protocol';

/** Builds the caller's own error for a failure (RelayError, LmtpConnectionError…). */
export type WireFailure = (kind: WireFailureKind, detail: string, cause?: Error) => Error;

/** RFC 5321 §4.5.3.1.5 caps a reply line at 512 octets; allow slack, refuse a flood. */
const MAX_LINE_BYTES = 64 * 1024;
/** Lines of one multi-line reply (EHLO lists a dozen): more is a peer flooding us. */
const MAX_REPLY_LINES = 200;
/**
 * Replies read ahead of the commands that asked for them (LMTP answers once per recipient after
 * the final dot; the gateway sends at most a few hundred recipients in one transaction).
 */
const MAX_QUEUED_REPLIES = 1_000;
const REPLY_LINE = /^(\d{3})(?:([ -])(.*))?$/s;
const ENHANCED = /^([245])\.(\d{1,3})\.(\d{1,3})(?:\s+|$)/;

function parseReply(raw: readonly { code: number; text: string }[], last: string): WireReply {
  const code = raw[0]?.code ?? 0;
  let enhancedCode: string | undefined;
  const lines = raw.map(({ text }) => {
    const m = ENHANCED.exec(text);
    // Only a code of the reply's own class is an enhanced status code (RFC 2034 §4).
    if (!m || m[1] !== String(code)[0]) return text;
    enhancedCode ??= `${m[1]}.${m[2]}.${m[3]}`;
    return text.slice(m[0].length);
  });
  const reply = { code, text: lines.join('\n'), lines, raw: last };
  return enhancedCode === undefined ? reply : { ...reply, enhancedCode };
}

/**
 * Reads the replies a server sends on a socket; `next()` takes them in order (pipelined commands
 * get their replies queued). Errors and closes fail the pending and every later read once the
 * queued replies are taken, so a caller awaiting a reply never hangs on a dead connection.
 */
export class ReplyReader {
  readonly #socket: Socket;
  readonly #failureOf: WireFailure;
  #buffer: Buffer = Buffer.alloc(0);
  #pending: { code: number; text: string }[] = [];
  readonly #replies: WireReply[] = [];
  #waiter: { resolve: (r: WireReply) => void; reject: (e: Error) => void } | undefined;
  #failure: Error | undefined;
  #connected: boolean;
  readonly #onConnect = (): void => void (this.#connected = true);
  readonly #onData = (chunk: Buffer): void => this.#push(chunk);
  readonly #onClose = (): void => this.fail(this.#failureOf('closed', 'connection closed'));
  readonly #onError = (err: NodeJS.ErrnoException): void =>
    this.fail(this.#failureOf(this.#connected ? 'broken' : 'connect', err.code ?? err.message, err));

  constructor(socket: Socket, failure: WireFailure) {
    this.#socket = socket;
    this.#failureOf = failure;
    this.#connected = !socket.connecting;
    socket.once('connect', this.#onConnect);
    socket.on('data', this.#onData);
    socket.on('end', this.#onClose);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
  }

  /** The next complete reply; rejects once the connection failed and no reply is left. */
  next(): Promise<WireReply> {
    const reply = this.#replies.shift();
    if (reply) return Promise.resolve(reply);
    if (this.#failure) return Promise.reject(this.#failure);
    if (this.#waiter) return Promise.reject(new GatewayError('INTERNAL', 'ReplyReader: one read at a time'));
    return new Promise((resolve, reject) => (this.#waiter = { resolve, reject }));
  }

  /** Why the connection ended, once it has. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /**
   * Whether bytes arrived that no command asked for (an idle connection the server is closing says
   * why first): such a connection is out of step and must not carry another transaction.
   */
  get unsolicited(): boolean {
    return this.#replies.length > 0 || this.#pending.length > 0 || this.#buffer.length > 0;
  }

  /** The first failure wins: a timeout stays a timeout when the close follows. */
  fail(error: Error): void {
    this.#failure ??= error;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(this.#failure);
  }

  /**
   * Stops reading (before a TLS upgrade) and says whether bytes arrived beyond the last reply:
   * after `220 Ready to start TLS`, any such byte is an injection attempt (RFC 3207 §5).
   */
  detach(): { readonly unread: boolean } {
    this.#socket.off('connect', this.#onConnect);
    this.#socket.off('data', this.#onData);
    this.#socket.off('end', this.#onClose);
    this.#socket.off('close', this.#onClose);
    this.#socket.off('error', this.#onError);
    return { unread: this.unsolicited };
  }

  #push(chunk: Buffer): void {
    // Once out of step (a line that is not a reply, a flood), nothing after it is read: a later
    // reply handed to the wrong command would give one recipient another's outcome. Replies queued
    // before the failure stay valid. What keeps arriving is dropped, so memory stays bounded.
    if (this.#failure) return;
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    for (let eol = this.#buffer.indexOf(0x0a); eol >= 0; eol = this.#buffer.indexOf(0x0a)) {
      const line = this.#buffer.subarray(0, eol).toString('utf8').replace(/\r$/, '');
      this.#buffer = this.#buffer.subarray(eol + 1);
      this.#line(line);
      if (this.#failure) return this.#drop();
    }
    if (this.#buffer.length > MAX_LINE_BYTES) {
      this.fail(this.#failureOf('protocol', 'reply too long'));
      this.#drop();
    }
  }

  #drop(): void {
    this.#buffer = Buffer.alloc(0);
    this.#pending = [];
  }

  #line(line: string): void {
    const m = REPLY_LINE.exec(line);
    if (!m) {
      this.fail(this.#failureOf('protocol', line.slice(0, 200)));
      return;
    }
    if (this.#pending.length >= MAX_REPLY_LINES || this.#replies.length >= MAX_QUEUED_REPLIES) {
      this.fail(this.#failureOf('protocol', 'too many reply lines'));
      return;
    }
    this.#pending.push({ code: Number(m[1]), text: m[3] ?? '' });
    if (m[2] === '-') return;
    const reply = parseReply(this.#pending, line);
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

  /**
   * A message received over SMTP already ends its lines with CRLF: such a chunk is only checked
   * (one read of each byte) and sent as it is, or copied once with the stuffing dots put in. A
   * chunk with a bare CR or LF goes through the byte-by-byte conversion (`#convert`). The CR of a
   * CRLF split across two chunks is held until the next one, as the conversion does.
   */
  encode(chunk: Buffer): Buffer {
    let start = 0;
    let head: Buffer | undefined;
    if (this.#pendingCr && chunk.length > 0) {
      this.#pendingCr = false;
      this.#atLineStart = true;
      head = CRLF;
      if (chunk[0] === LF) start = 1;
    }
    const body = this.#stuffCrlf(chunk, start) ?? this.#convert(chunk.subarray(start));
    return head ? Buffer.concat([head, body]) : body;
  }

  /**
   * The stuffed bytes of `chunk` from `start`, or undefined (state untouched) if a CR or LF is bare.
   * Most bytes are neither CR nor LF and are passed over with one comparison (both are below 0x0e);
   * a '.' can only need doubling at the start of the chunk or just after an LF.
   */
  #stuffCrlf(chunk: Buffer, start: number): Buffer | undefined {
    const len = chunk.length;
    if (start >= len) return chunk.subarray(len);
    let dots: number[] | undefined;
    if (this.#atLineStart && chunk[start] === DOT) dots = [start];
    for (let i = start; i < len; i++) {
      const byte = chunk[i]!;
      if (byte > CR) continue;
      if (byte === CR) {
        if (i + 1 < len && chunk[i + 1] !== LF) return undefined;
      } else if (byte === LF) {
        if (i === start || chunk[i - 1] !== CR) return undefined;
        if (i + 1 < len && chunk[i + 1] === DOT) (dots ??= []).push(i + 1);
      }
    }
    // A final CR waits for the next chunk: CRLF split in two, or a bare CR to convert.
    const pendingCr = chunk[len - 1] === CR;
    const end = pendingCr ? len - 1 : len;
    // The last byte taken (a pending CR aside) says whether the next chunk starts a line.
    if (end > start) this.#atLineStart = chunk[end - 1] === LF;
    this.#pendingCr = pendingCr;
    if (!dots) return chunk.subarray(start, end);
    const out = Buffer.allocUnsafe(end - start + dots.length);
    let n = 0;
    let from = start;
    for (const at of dots) {
      n += chunk.copy(out, n, from, at);
      out[n++] = DOT;
      from = at;
    }
    n += chunk.copy(out, n, from, end);
    return out.subarray(0, n);
  }

  /** Byte by byte: bare CR and LF become CRLF, a leading '.' is doubled. */
  #convert(chunk: Buffer): Buffer {
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
    const open = this.#pendingCr || !this.#atLineStart;
    this.#pendingCr = false;
    this.#atLineStart = true;
    return Buffer.from(open ? '\r\n.\r\n' : '.\r\n', 'latin1');
  }
}
