import net from 'node:net';
import { GatewayError, isGatewayError } from '../errors/index.js';
import type { ImapEndpoint, MasterCredentials } from '../store/index.js';

/**
 * Opens the store's IMAP session for a mailbox the client was allowed to open (ARCHITECTURE.md §5
 * "IMAP"): plain TCP to the store, its greeting, then AUTHENTICATE PLAIN with the mailbox as
 * authorization identity and the master user's credentials (RFC 4616 §2; Dovecot master users). The
 * socket is handed over paused, with whatever the store sent after its tagged OK, so the caller can
 * pipe bytes unchanged from there on.
 */
export interface StoreSession {
  readonly socket: net.Socket;
  /** The store's capability list after login, as it sent it (RFC 9051 §7.2.2). */
  readonly capabilities: string;
  /** Bytes received after the last line read here; they belong to the client. */
  readonly leftover: Buffer;
}

/** One response line from the store (RFC 9051 §7.1), parsed with no I/O. */
export interface StoreLine {
  readonly tag: string;
  /** OK, NO, BAD, BYE, PREAUTH, CAPABILITY, ... or '' for a continuation. */
  readonly kind: string;
  /** Text of a leading `[CAPABILITY ...]` response code, if any. */
  readonly capability?: string;
  readonly text: string;
}

export function parseStoreLine(line: string): StoreLine {
  if (line.startsWith('+')) return { tag: '+', kind: '', text: line.slice(1).trim() };
  const match = /^(\S+) (\S+)(?: (.*))?$/.exec(line);
  if (!match) return { tag: '', kind: '', text: line };
  const [, tag = '', kind = '', rest = ''] = match;
  const capability = /^\[CAPABILITY ([^\]]*)\]/i.exec(rest)?.[1];
  return { tag, kind: kind.toUpperCase(), text: rest, ...(capability ? { capability } : {}) };
}

/** A mailbox name goes into a SASL field: no control characters, no spaces, not empty. */
function assertMailboxName(mailbox: string): void {
  if (!/^[^\s\p{Cc}]+$/u.test(mailbox)) {
    throw new GatewayError('BAL_INVALID_ADDRESS', 'mailbox name not usable for a store login', { mailbox });
  }
}

/** Reads CRLF-terminated lines off a socket until the caller stops it. */
class LineReader {
  readonly #socket: net.Socket;
  #buf = Buffer.alloc(0);
  #waiter: { resolve: (line: string) => void; reject: (err: Error) => void } | undefined;
  #failure: Error | undefined;
  readonly #onData = (chunk: Buffer) => {
    this.#buf = Buffer.concat([this.#buf, chunk]);
    this.#deliver();
  };

  constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on('data', this.#onData);
  }

  fail(err: Error): void {
    this.#failure ??= err;
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter?.reject(err);
  }

  next(): Promise<string> {
    if (this.#failure) return Promise.reject(this.#failure);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      this.#deliver();
    });
  }

  /** Stops reading; what was received and not read is returned. */
  stop(): Buffer {
    this.#socket.off('data', this.#onData);
    this.#socket.pause();
    return this.#buf;
  }

  #deliver(): void {
    if (!this.#waiter) return;
    const eol = this.#buf.indexOf('\r\n');
    if (eol < 0) {
      if (this.#buf.length > 64 * 1024)
        this.fail(new GatewayError('STORE_UNAVAILABLE', 'store response line too long'));
      return;
    }
    const line = this.#buf.toString('utf8', 0, eol);
    this.#buf = this.#buf.subarray(eol + 2);
    const waiter = this.#waiter;
    this.#waiter = undefined;
    waiter.resolve(line);
  }
}

async function readTagged(reader: LineReader, tag: string, onUntagged: (line: StoreLine) => void) {
  for (;;) {
    const line = parseStoreLine(await reader.next());
    if (line.tag === tag) return line;
    if (line.tag === '*' && line.kind === 'BYE')
      throw new GatewayError('STORE_UNAVAILABLE', `store said BYE: ${line.text}`);
    onUntagged(line);
  }
}

async function converse(
  reader: LineReader,
  socket: net.Socket,
  master: MasterCredentials,
  mailbox: string,
): Promise<string> {
  const greeting = parseStoreLine(await reader.next());
  if (greeting.tag !== '*' || greeting.kind !== 'OK')
    throw new GatewayError('STORE_UNAVAILABLE', 'unexpected store greeting');
  const response = Buffer.from(`${mailbox}\0${master.user}\0${master.password}`, 'utf8').toString('base64');
  const saslIr = greeting.capability?.toUpperCase().split(' ').includes('SASL-IR') === true;
  socket.write(saslIr ? `G1 AUTHENTICATE PLAIN ${response}\r\n` : 'G1 AUTHENTICATE PLAIN\r\n');
  let capabilities: string | undefined;
  const login = await readTagged(reader, 'G1', (line) => {
    if (line.tag === '+' && !saslIr) socket.write(`${response}\r\n`);
    else if (line.kind === 'CAPABILITY') capabilities = line.text;
  });
  if (login.kind !== 'OK') throw new GatewayError('STORE_LOGIN_REFUSED', login.text);
  capabilities = login.capability ?? capabilities;
  if (capabilities !== undefined) return capabilities;
  socket.write('G2 CAPABILITY\r\n');
  const done = await readTagged(reader, 'G2', (line) => {
    if (line.kind === 'CAPABILITY') capabilities = line.text;
  });
  if (done.kind !== 'OK' || capabilities === undefined)
    throw new GatewayError('STORE_UNAVAILABLE', 'store gave no capability list');
  return capabilities;
}

export async function openStoreSession(
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
  timeoutMs: number,
): Promise<StoreSession> {
  assertMailboxName(mailbox);
  const socket = net.connect({ host: endpoint.host, port: endpoint.port });
  socket.setNoDelay(true);
  const reader = new LineReader(socket);
  socket.setTimeout(timeoutMs, () =>
    reader.fail(new GatewayError('STORE_UNAVAILABLE', `no answer from the store in ${timeoutMs} ms`)),
  );
  socket.on('error', (err) => reader.fail(err));
  socket.on('close', () => reader.fail(new GatewayError('STORE_UNAVAILABLE', 'store closed the connection')));
  try {
    const capabilities = await converse(reader, socket, master, mailbox);
    // The error and close listeners stay: a failure before the caller pipes is not an uncaught error.
    socket.setTimeout(0);
    return { socket, capabilities, leftover: reader.stop() };
  } catch (err) {
    socket.destroy();
    const where = `${endpoint.host}:${endpoint.port}`;
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      isGatewayError(err) && err.code === 'STORE_LOGIN_REFUSED'
        ? 'the store refused the master login'
        : 'could not log in to the store',
      { endpoint: where, mailbox },
      { cause: err },
    );
  }
}
