import net from 'node:net';
import { hostname } from 'node:os';
import { GatewayError, isGatewayError } from '../errors/index.js';
import { describeEndpoint, type LmtpEndpoint } from './store-endpoints.js';
import { type ReplyReader, sendEnvelope, sendMessage } from '../shared/index.js';
import { LmtpConnectionError, lmtpReplyReader, type LmtpReply } from './lmtp-wire.js';

/** The store's answer for one recipient. */
export interface LmtpRecipientResult {
  readonly recipient: string;
  readonly outcome: 'delivered' | 'temporary' | 'permanent';
  readonly code: number;
  readonly enhancedCode?: string;
  readonly text: string;
  /**
   * The connection failed after the final "." went out and before this recipient's reply: the store
   * may have delivered. Only then need the caller ask the store before delivering again.
   */
  readonly outcomeUnknown?: true;
}

export interface LmtpEnvelope {
  /** Envelope sender; '' for the null sender (bounces, RFC 5321 §4.5.5). */
  readonly from: string;
  readonly to: readonly string[];
}

export interface LmtpDeliveryOptions {
  /** Inactivity limit for connecting, each reply, and each write. Default 60 s. */
  readonly timeoutMs?: number;
  /** Name sent in LHLO. Default the host name. */
  readonly lhlo?: string;
}

/** Characters that would break the command line or smuggle a second command. */
const UNSAFE_ADDRESS = /[\s<>\p{Cc}]/u;

function outcomeOf(code: number): LmtpRecipientResult['outcome'] {
  if (code >= 200 && code < 300) return 'delivered';
  return code >= 500 ? 'permanent' : 'temporary';
}

function fromReply(recipient: string, reply: LmtpReply): LmtpRecipientResult {
  const base = { recipient, outcome: outcomeOf(reply.code), code: reply.code, text: reply.text };
  return reply.enhancedCode === undefined ? base : { ...base, enhancedCode: reply.enhancedCode };
}

/**
 * Results we write ourselves when the store never answered for a recipient: 421 with RFC 3463
 * X.4.1 (no answer from host: could not connect) or X.4.2 (bad connection: dropped, timed out,
 * spoke nonsense). Always temporary: the store being down must never bounce mail. `afterDot`: the
 * final "." was sent, so the store may hold the message (outcome unknown); before it, the store
 * cannot have delivered anything (RFC 5321 §4.1.1.4: the transaction ends with the dot).
 */
function connectionFailure(
  recipient: string,
  err: LmtpConnectionError,
  where: string,
  afterDot: boolean,
): LmtpRecipientResult {
  const enhancedCode = err.kind === 'connect' ? '4.4.1' : '4.4.2';
  const result = {
    recipient,
    outcome: 'temporary' as const,
    code: 421,
    enhancedCode,
    text: `no answer from the store at ${where} (${err.kind}: ${err.message})${afterDot ? '; outcome unknown, the message was sent' : ''}`,
  };
  return afterDot ? { ...result, outcomeUnknown: true } : result;
}

/** What a delivery sends: the bytes, a stream read once, or a way to open the stream when needed. */
export type LmtpMessage = Buffer | NodeJS.ReadableStream | (() => NodeJS.ReadableStream);

/** One connection to the store; it may carry several transactions (RFC 2033 §4.1, like SMTP). */
class LmtpSession {
  readonly #socket: net.Socket;
  readonly #reader: ReplyReader;
  readonly #timeoutMs: number;
  #eightBit = false;
  #pipelining = false;
  /** Whether a transaction began here: the next one starts with RSET. */
  used = false;

  constructor(endpoint: LmtpEndpoint, timeoutMs: number) {
    const target =
      'path' in endpoint ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port };
    this.#timeoutMs = timeoutMs;
    this.#socket = net.connect({ ...target, timeout: timeoutMs });
    this.#reader = lmtpReplyReader(this.#socket);
    this.#socket.on('timeout', () => {
      this.#reader.fail(new LmtpConnectionError('timeout', `no activity for ${timeoutMs} ms`));
      this.#socket.destroy();
    });
  }

  /** Reads the greeting and says LHLO; learns whether to send BODY=8BITMIME and to pipeline. */
  async open(lhlo: string): Promise<void> {
    const greeting = await this.next();
    if (greeting.code !== 220)
      throw new LmtpConnectionError('protocol', `greeting ${greeting.code} ${greeting.text}`);
    const hello = await this.command(`LHLO ${lhlo}`);
    if (hello.code !== 250) throw new LmtpConnectionError('protocol', `LHLO ${hello.code} ${hello.text}`);
    this.#eightBit = hello.lines.some((l) => /^8BITMIME\b/i.test(l));
    this.#pipelining = hello.lines.some((l) => /^PIPELINING\b/i.test(l));
  }

  get eightBit(): boolean {
    return this.#eightBit;
  }

  get pipelining(): boolean {
    return this.#pipelining;
  }

  /** Whether another transaction may use this connection: open, and nothing unasked-for read. */
  get usable(): boolean {
    return !this.#socket.destroyed && this.#reader.failure === undefined && !this.#reader.unsolicited;
  }

  /** Waiting in the pool: the pool's idle limit applies, not the inactivity timeout. */
  idle(): void {
    this.#socket.setTimeout(0);
  }

  busy(): void {
    this.#socket.setTimeout(this.#timeoutMs);
  }

  next(): Promise<LmtpReply> {
    return this.#reader.next();
  }

  async command(line: string): Promise<LmtpReply> {
    await this.write(Buffer.from(`${line}\r\n`, 'utf8'));
    return this.#reader.next();
  }

  /**
   * Sends the message and the final "." (RFC 5321 §4.1.1.4), as the relay does (shared/smtp-envelope.ts).
   * `sent.finalDot` turns true just before the "." is written: from then on the store may have
   * delivered, whatever happens to the connection.
   */
  async sendMessage(message: Buffer | NodeJS.ReadableStream, sent: { finalDot: boolean }): Promise<void> {
    await sendMessage(this, Buffer.isBuffer(message) ? message : readChunks(message), sent);
  }

  /** Polite QUIT without waiting for the answer; every result is already known. */
  close(): void {
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.end('QUIT\r\n');
    this.#socket.destroySoon();
  }

  abort(): void {
    this.#socket.destroy();
  }

  write(data: Buffer): Promise<void> {
    const failed = this.#reader.failure;
    if (failed) return Promise.reject(failed);
    if (this.#socket.write(data)) return Promise.resolve();
    // Wait for the kernel buffer to drain, or for the connection to die (the reader knows why).
    return new Promise((resolve, reject) => {
      const onDrain = (): void => {
        this.#socket.off('close', onClose);
        resolve();
      };
      const onClose = (): void => {
        this.#socket.off('drain', onDrain);
        reject(this.#reader.failure ?? new LmtpConnectionError('closed', 'connection closed'));
      };
      this.#socket.once('drain', onDrain);
      this.#socket.once('close', onClose);
    });
  }
}

async function* readChunks(stream: NodeJS.ReadableStream): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream) yield typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
  } catch (err) {
    // The message could not be read; nothing was delivered (the transaction is aborted below).
    throw new GatewayError('MESSAGE_UNREADABLE', 'message source failed', {}, { cause: err });
  }
}

/** How far a transaction went, for the caller deciding whether it may be tried again. */
interface Progress {
  finalDot: boolean;
  /** The stream handed to the session (to release; a stream cannot be sent twice). */
  opened?: NodeJS.ReadableStream;
}

/**
 * One transaction on an open session: RSET when the session carried one before, MAIL, one RCPT per
 * recipient without a result, DATA, then one reply per accepted recipient (RFC 2033 §4.2). When the
 * store offers PIPELINING (RFC 2920) the commands up to DATA go in one write.
 */
async function transaction(
  session: LmtpSession,
  envelope: LmtpEnvelope,
  message: LmtpMessage,
  results: (LmtpRecipientResult | undefined)[],
  progress: Progress,
): Promise<void> {
  const reset = session.used;
  session.used = true;
  const pending = results.flatMap((r, i) => (r === undefined ? [i] : []));
  const sent = await sendEnvelope(session, {
    reset,
    mail: `MAIL FROM:<${envelope.from}>${session.eightBit ? ' BODY=8BITMIME' : ''}`,
    rcpts: pending.map((i) => `RCPT TO:<${envelope.to[i] ?? ''}>`),
    pipelining: session.pipelining,
    outOfStep: (detail) => new LmtpConnectionError('protocol', detail),
  });
  const accepted = sent.accepted.map((n) => pending[n]!);
  pending.forEach((i, n) => {
    if (accepted.includes(i)) return;
    const refusal = sent.mail.code !== 250 ? sent.mail : sent.rcpts[n];
    if (refusal) results[i] = fromReply(envelope.to[i] ?? '', refusal);
  });
  // RFC 2920 §3.1: with no valid recipient the pipelined DATA must be refused; a store that
  // accepts it is out of step, and the connection is not used again.
  if (sent.outOfStep) throw new LmtpConnectionError('protocol', 'DATA accepted without recipients');
  if (!sent.sendMessage) {
    for (const i of accepted) if (sent.data) results[i] = fromReply(envelope.to[i] ?? '', sent.data);
    return;
  }
  const body = typeof message === 'function' ? message() : message;
  if (!Buffer.isBuffer(body)) progress.opened = body;
  await session.sendMessage(body, progress);
  // One reply per recipient accepted at RCPT, in RCPT order: each is that recipient's own fate.
  for (const i of accepted) results[i] = fromReply(envelope.to[i] ?? '', await session.next());
}

function invalidRecipient(recipient: string): LmtpRecipientResult | undefined {
  if (recipient !== '' && !UNSAFE_ADDRESS.test(recipient)) return undefined;
  return {
    recipient,
    outcome: 'permanent',
    code: 553,
    enhancedCode: '5.1.3',
    text: 'address not acceptable in an LMTP command (not sent to the store)',
  };
}

export interface LmtpPoolOptions extends LmtpDeliveryOptions {
  /** Connections open at most, in use or idle. Default 20 (Postfix keeps as many). */
  readonly size?: number;
  /** An idle connection is closed after this long. Default 30 s. */
  readonly idleMs?: number;
}

/**
 * Persistent LMTP connections to the store (RFC 2033), shared by concurrent deliveries: a delivery
 * takes an idle connection or opens one (up to `size`, then waits for one), and gives it back when
 * the transaction ended cleanly; the next transaction on it starts with RSET. A connection that
 * failed, or said something unasked-for while idle, is dropped.
 */
export class LmtpPool {
  readonly #endpoint: LmtpEndpoint;
  readonly #size: number;
  readonly #idleMs: number;
  readonly #timeoutMs: number;
  readonly #lhlo: string;
  readonly #idle: Array<{ session: LmtpSession; timer: NodeJS.Timeout }> = [];
  readonly #waiters: Array<() => void> = [];
  #open = 0;
  #closed = false;

  constructor(endpoint: LmtpEndpoint, options: LmtpPoolOptions = {}) {
    this.#endpoint = endpoint;
    this.#size = Math.max(1, options.size ?? 20);
    this.#idleMs = options.idleMs ?? 30_000;
    this.#timeoutMs = options.timeoutMs ?? 60_000;
    this.#lhlo = options.lhlo ?? hostname();
  }

  /** Connections open now (in use and idle), for tests and metrics. */
  get openConnections(): number {
    return this.#open;
  }

  /**
   * Delivers one message to the store and returns one result per recipient, in the order of
   * `envelope.to`: refused at RCPT, refused or accepted after DATA, or, when the connection failed
   * before the store answered for it, `temporary` 421 4.4.1/4.4.2. Store and network problems never
   * throw: a recipient the store already answered keeps that answer (no duplicate on retry), the
   * rest are temporary. It throws only for the caller's faults: a sender address that cannot be
   * written in MAIL FROM (BAD_ADDRESS_SYNTAX), or a message stream that fails while being read
   * (INTERNAL; the transaction is aborted, nothing is delivered). Recipients whose address cannot be
   * written in RCPT TO get a local permanent 553 5.1.3.
   *
   * `message` is the raw message: a Buffer, a readable stream read once, or a function opening the
   * stream (called only once the store accepted DATA, so nothing is opened when every recipient is
   * refused). Lines should end with CRLF, as received over SMTP; then the store keeps the bytes
   * unchanged. Bare CR or LF are sent as CRLF, and a missing final CRLF is added.
   *
   * A reused connection that fails before the final "." is sent (the store closed it while idle)
   * cannot have delivered anything: the transaction is tried once more on a newly opened connection
   * (never another idle one, which may have been closed the same way). If a connection drops after
   * the final "." and before the replies, the store may have delivered: the result is then 421 4.4.2
   * with `outcomeUnknown`, and the caller asks the store before delivering again. A failure before
   * the "." is 421 4.4.2 without it: nothing to ask.
   */
  async deliver(envelope: LmtpEnvelope, message: LmtpMessage): Promise<LmtpRecipientResult[]> {
    if (UNSAFE_ADDRESS.test(envelope.from)) {
      release(message);
      throw new GatewayError('BAD_ADDRESS_SYNTAX', 'envelope sender cannot be written in MAIL FROM');
    }
    const results = envelope.to.map(invalidRecipient);
    if (results.every((r) => r !== undefined)) {
      release(message);
      return results;
    }
    const progress: Progress = { finalDot: false };
    try {
      for (let attempt = 1; ; attempt += 1) {
        let session: LmtpSession;
        let reused: boolean;
        try {
          ({ session, reused } = await this.#acquire(attempt > 1));
        } catch (err) {
          if (!(err instanceof LmtpConnectionError)) throw err;
          return this.#failed(envelope, results, err, false);
        }
        try {
          await transaction(session, envelope, message, results, progress);
          this.#giveBack(session);
          break;
        } catch (err) {
          session.abort(); // never send "." after a partial message, never reuse a broken session
          this.#dropped();
          if (isGatewayError(err) && err.code === 'MESSAGE_UNREADABLE')
            throw new GatewayError(
              'INTERNAL',
              'could not read the message to deliver',
              {},
              { cause: err.cause },
            );
          if (!(err instanceof LmtpConnectionError)) throw err;
          const again =
            reused &&
            attempt === 1 &&
            !progress.finalDot &&
            (progress.opened === undefined || typeof message === 'function');
          if (again) {
            if (progress.opened) release(progress.opened);
            delete progress.opened;
            continue;
          }
          return this.#failed(envelope, results, err, progress.finalDot);
        }
      }
    } finally {
      release(progress.opened ?? message);
    }
    return results.map((r) => {
      if (!r) throw new GatewayError('INTERNAL', 'LMTP transaction left a recipient without a result');
      return r;
    });
  }

  /** Closes the idle connections; deliveries in flight finish, then close theirs. */
  close(): void {
    this.#closed = true;
    for (const { session, timer } of this.#idle.splice(0)) {
      clearTimeout(timer);
      session.close();
      this.#open -= 1;
    }
    for (const wake of this.#waiters.splice(0)) wake();
  }

  #failed(
    envelope: LmtpEnvelope,
    results: readonly (LmtpRecipientResult | undefined)[],
    err: LmtpConnectionError,
    afterDot: boolean,
  ): LmtpRecipientResult[] {
    const where = describeEndpoint(this.#endpoint);
    return results.map((r, i) => r ?? connectionFailure(envelope.to[i] ?? '', err, where, afterDot));
  }

  /**
   * An idle connection, or a new one. `fresh`: always a new one (a retry after a reused connection
   * failed: the other idle ones may be dead the same way); at the size limit the oldest idle
   * connection is closed to make room.
   */
  async #acquire(fresh = false): Promise<{ session: LmtpSession; reused: boolean }> {
    for (;;) {
      if (this.#closed) throw new LmtpConnectionError('closed', 'the LMTP pool is closed');
      if (fresh) {
        if (this.#open >= this.#size) {
          const oldest = this.#idle.shift();
          if (oldest) {
            clearTimeout(oldest.timer);
            oldest.session.close();
            this.#open -= 1;
          }
        }
      } else {
        for (let idle = this.#idle.pop(); idle; idle = this.#idle.pop()) {
          clearTimeout(idle.timer);
          if (idle.session.usable) {
            idle.session.busy();
            return { session: idle.session, reused: true };
          }
          idle.session.abort();
          this.#open -= 1;
        }
      }
      if (this.#open < this.#size) {
        this.#open += 1;
        const session = new LmtpSession(this.#endpoint, this.#timeoutMs);
        try {
          await session.open(this.#lhlo);
        } catch (err) {
          session.abort();
          this.#dropped();
          throw err;
        }
        return { session, reused: false };
      }
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  #giveBack(session: LmtpSession): void {
    if (this.#closed || !session.usable) {
      session.close();
      this.#dropped();
      return;
    }
    session.idle();
    const entry = {
      session,
      timer: setTimeout(() => {
        const at = this.#idle.indexOf(entry);
        if (at >= 0) this.#idle.splice(at, 1);
        session.close();
        this.#dropped();
      }, this.#idleMs),
    };
    entry.timer.unref();
    this.#idle.push(entry);
    this.#waiters.shift()?.();
  }

  /** A connection closed: room for a waiting delivery to open another. */
  #dropped(): void {
    this.#open -= 1;
    this.#waiters.shift()?.();
  }
}

/**
 * Delivers one message over a connection of its own (closed afterwards): see LmtpPool.deliver.
 * The gateway's delivery uses a pool; this is for one-off deliveries and tests.
 */
export async function deliverLmtp(
  endpoint: LmtpEndpoint,
  envelope: LmtpEnvelope,
  message: LmtpMessage,
  options: LmtpDeliveryOptions = {},
): Promise<LmtpRecipientResult[]> {
  const pool = new LmtpPool(endpoint, { ...options, size: 1 });
  try {
    return await pool.deliver(envelope, message);
  } finally {
    pool.close();
  }
}

/** A stream we did not read to the end (all recipients refused) would keep its file open. */
function release(message: LmtpMessage): void {
  if (typeof message === 'function' || Buffer.isBuffer(message)) return;
  if ('destroy' in message && typeof message.destroy === 'function') {
    (message as { destroy(): void }).destroy();
  }
}
