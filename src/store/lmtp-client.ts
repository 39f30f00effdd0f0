import net from 'node:net';
import { hostname } from 'node:os';
import { GatewayError, isGatewayError } from '../errors/index.js';
import { describeEndpoint, type LmtpEndpoint } from './store-endpoints.js';
import { DotStuffer, LmtpConnectionError, ReplyReader, type LmtpReply } from './lmtp-wire.js';

/** The store's answer for one recipient. */
export interface LmtpRecipientResult {
  readonly recipient: string;
  readonly outcome: 'delivered' | 'temporary' | 'permanent';
  readonly code: number;
  readonly enhancedCode?: string;
  readonly text: string;
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
const CHUNK = 64 * 1024;

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
 * spoke nonsense). Always temporary: the store being down must never bounce mail.
 */
function connectionFailure(recipient: string, err: LmtpConnectionError, where: string): LmtpRecipientResult {
  const enhancedCode = err.kind === 'connect' ? '4.4.1' : '4.4.2';
  return {
    recipient,
    outcome: 'temporary',
    code: 421,
    enhancedCode,
    text: `no answer from the store at ${where} (${err.kind}: ${err.message})`,
  };
}

class LmtpSession {
  readonly #socket: net.Socket;
  readonly #reader: ReplyReader;

  constructor(endpoint: LmtpEndpoint, timeoutMs: number) {
    const target =
      'path' in endpoint ? { path: endpoint.path } : { host: endpoint.host, port: endpoint.port };
    this.#socket = net.connect({ ...target, timeout: timeoutMs });
    this.#reader = new ReplyReader(this.#socket);
    this.#socket.on('timeout', () => {
      this.#reader.fail(new LmtpConnectionError('timeout', `no activity for ${timeoutMs} ms`));
      this.#socket.destroy();
    });
  }

  next(): Promise<LmtpReply> {
    return this.#reader.next();
  }

  async command(line: string): Promise<LmtpReply> {
    await this.#write(Buffer.from(`${line}\r\n`, 'utf8'));
    return this.#reader.next();
  }

  /** Sends the message and the final "." (RFC 5321 §4.1.1.4). */
  async sendMessage(message: Buffer | NodeJS.ReadableStream): Promise<void> {
    const stuffer = new DotStuffer();
    if (Buffer.isBuffer(message)) {
      for (let at = 0; at < message.length; at += CHUNK) {
        await this.#write(stuffer.encode(message.subarray(at, at + CHUNK)));
      }
    } else {
      for await (const chunk of readChunks(message)) await this.#write(stuffer.encode(chunk));
    }
    await this.#write(stuffer.end());
  }

  /** Polite QUIT without waiting for the answer; every result is already known. */
  close(): void {
    if (!this.#socket.destroyed && this.#socket.writable) this.#socket.end('QUIT\r\n');
    this.#socket.destroySoon();
  }

  abort(): void {
    this.#socket.destroy();
  }

  #write(data: Buffer): Promise<void> {
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

/** MAIL, one RCPT per recipient, DATA, then one reply per accepted recipient (RFC 2033 §4.2). */
async function transaction(
  session: LmtpSession,
  envelope: LmtpEnvelope,
  message: Buffer | NodeJS.ReadableStream,
  results: (LmtpRecipientResult | undefined)[],
  lhlo: string,
): Promise<void> {
  const greeting = await session.next();
  if (greeting.code !== 220)
    throw new LmtpConnectionError('protocol', `greeting ${greeting.code} ${greeting.text}`);
  const hello = await session.command(`LHLO ${lhlo}`);
  if (hello.code !== 250) throw new LmtpConnectionError('protocol', `LHLO ${hello.code} ${hello.text}`);
  const eightBit = hello.lines.some((l) => /^8BITMIME\b/i.test(l)) ? ' BODY=8BITMIME' : '';
  const pending = results.flatMap((r, i) => (r === undefined ? [i] : []));
  const mail = await session.command(`MAIL FROM:<${envelope.from}>${eightBit}`);
  if (mail.code !== 250) {
    for (const i of pending) results[i] = fromReply(envelope.to[i] ?? '', mail);
    return;
  }
  const accepted: number[] = [];
  for (const i of pending) {
    const reply = await session.command(`RCPT TO:<${envelope.to[i] ?? ''}>`);
    if (reply.code >= 200 && reply.code < 300) accepted.push(i);
    else results[i] = fromReply(envelope.to[i] ?? '', reply);
  }
  if (accepted.length === 0) return;
  const data = await session.command('DATA');
  if (data.code !== 354) {
    for (const i of accepted) results[i] = fromReply(envelope.to[i] ?? '', data);
    return;
  }
  await session.sendMessage(message);
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

/**
 * Delivers one message to the store over LMTP (RFC 2033) and returns one result per recipient, in
 * the order of `envelope.to`: refused at RCPT, refused or accepted after DATA, or, when the
 * connection failed before the store answered for it, `temporary` 421 4.4.1/4.4.2. Store and
 * network problems never throw: a recipient the store already answered keeps that answer (no
 * duplicate on retry), the rest are temporary. It throws only for the caller's faults: a sender
 * address that cannot be written in MAIL FROM (BAD_ADDRESS_SYNTAX), or a message stream that fails
 * while being read (INTERNAL; the transaction is aborted, nothing is delivered). Recipients whose
 * address cannot be written in RCPT TO get a local permanent 553 5.1.3.
 *
 * `message` is the raw message: a Buffer or a readable stream (e.g. fs.createReadStream of a spool
 * file), read once. Lines should end with CRLF, as received over SMTP; then the store keeps the
 * bytes unchanged (its IMAP returns them as sent, after the Return-Path it adds). Bare CR or LF are
 * sent as CRLF, and a missing final CRLF is added, as the protocol requires.
 *
 * If the connection drops after the final "." and before the replies, the store may have
 * delivered: reporting `temporary` then risks a duplicate on retry, never a loss.
 */
export async function deliverLmtp(
  endpoint: LmtpEndpoint,
  envelope: LmtpEnvelope,
  message: Buffer | NodeJS.ReadableStream,
  options: LmtpDeliveryOptions = {},
): Promise<LmtpRecipientResult[]> {
  if (UNSAFE_ADDRESS.test(envelope.from)) {
    throw new GatewayError('BAD_ADDRESS_SYNTAX', 'envelope sender cannot be written in MAIL FROM');
  }
  const results = envelope.to.map(invalidRecipient);
  if (results.every((r) => r !== undefined)) {
    release(message);
    return results;
  }
  const session = new LmtpSession(endpoint, options.timeoutMs ?? 60_000);
  try {
    await transaction(session, envelope, message, results, options.lhlo ?? hostname());
  } catch (err) {
    if (isGatewayError(err) && err.code === 'MESSAGE_UNREADABLE') {
      session.abort(); // never send "." after a partial message
      throw new GatewayError('INTERNAL', 'could not read the message to deliver', {}, { cause: err.cause });
    }
    if (!(err instanceof LmtpConnectionError)) throw err;
    const where = describeEndpoint(endpoint);
    return results.map((r, i) => r ?? connectionFailure(envelope.to[i] ?? '', err, where));
  } finally {
    session.close();
    release(message);
  }
  return results.map((r) => {
    if (!r) throw new GatewayError('INTERNAL', 'LMTP transaction left a recipient without a result');
    return r;
  });
}

/** A stream we did not read to the end (all recipients refused) would keep its file open. */
function release(message: Buffer | NodeJS.ReadableStream): void {
  if (!Buffer.isBuffer(message) && 'destroy' in message && typeof message.destroy === 'function') {
    (message as { destroy(): void }).destroy();
  }
}
