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

/** The store's greeting: it must be `* OK`; whether it offers SASL-IR (RFC 4959) is returned. */
async function greet(reader: LineReader): Promise<boolean> {
  const greeting = parseStoreLine(await reader.next());
  if (greeting.tag !== '*' || greeting.kind !== 'OK')
    throw new GatewayError('STORE_UNAVAILABLE', 'unexpected store greeting');
  return greeting.capability?.toUpperCase().split(' ').includes('SASL-IR') === true;
}

async function masterLogin(
  reader: LineReader,
  socket: net.Socket,
  master: MasterCredentials,
  mailbox: string,
  saslIr: boolean,
): Promise<string> {
  const response = Buffer.from(`${mailbox}\0${master.user}\0${master.password}`, 'utf8').toString('base64');
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

/** A TCP connection to the store whose failures (error, close, timeout) fail its reader. */
interface StoreConnection {
  readonly socket: net.Socket;
  readonly reader: LineReader;
}

function connectStore(endpoint: ImapEndpoint): StoreConnection {
  const socket = net.connect({ host: endpoint.host, port: endpoint.port });
  socket.setNoDelay(true);
  const reader = new LineReader(socket);
  socket.on('error', (err) => reader.fail(err));
  socket.on('close', () => reader.fail(new GatewayError('STORE_UNAVAILABLE', 'store closed the connection')));
  return { socket, reader };
}

function armTimeout({ socket, reader }: StoreConnection, timeoutMs: number): void {
  socket.setTimeout(timeoutMs, () =>
    reader.fail(new GatewayError('STORE_UNAVAILABLE', `no answer from the store in ${timeoutMs} ms`)),
  );
}

/** The master login on a greeted connection; on failure the connection is destroyed. */
async function loginOn(
  connection: StoreConnection,
  saslIr: Promise<boolean>,
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
): Promise<StoreSession> {
  const { socket, reader } = connection;
  try {
    const capabilities = await masterLogin(reader, socket, master, mailbox, await saslIr);
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

export async function openStoreSession(
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
  timeoutMs: number,
): Promise<StoreSession> {
  assertMailboxName(mailbox);
  const connection = connectStore(endpoint);
  armTimeout(connection, timeoutMs);
  return loginOn(connection, greet(connection.reader), endpoint, master, mailbox);
}

export interface StoreConnectorOptions {
  /** Most connections kept greeted and waiting. Default 8. */
  readonly maxWarm?: number;
  /** A waiting connection unused for this long is closed (the store drops idle ones). Default 20 s. */
  readonly maxIdleMs?: number;
  /** Budget for a waiting connection's connect and greeting. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Pause after a login before opening the next connection. Default 50 ms. */
  readonly refillDelayMs?: number;
}

/** A connection opened ahead of a login: connected, its greeting read or on its way. */
interface WarmConnection extends StoreConnection {
  /** SASL-IR offered; rejects when the greeting does not come. */
  readonly greeted: Promise<boolean>;
  expiry: NodeJS.Timeout | undefined;
}

/**
 * The store's TCP connect and greeting, done before a client needs them. Dovecot starts a login
 * process for each connection, which under load costs more than the whole rest of the login
 * (issue #16: 33 ms alone, 234 ms at 10 clients), so a few connections are kept connected and
 * greeted; a login takes one and only sends its master AUTHENTICATE. Nothing is authenticated
 * ahead of time: a waiting connection is one the store has not let in yet.
 *
 * The number kept follows the demand: a login that finds none raises it by one (up to `maxWarm`),
 * a connection that waited `maxIdleMs` unused lowers it by one, down to none on an idle gateway.
 * A connection that breaks before its login makes the login fall back to a fresh connection, and
 * the number drops to none so that a store that is down costs at most one extra attempt per login.
 */
export class StoreConnector {
  readonly #endpoint: ImapEndpoint;
  readonly #master: MasterCredentials;
  readonly #maxWarm: number;
  readonly #maxIdleMs: number;
  readonly #connectTimeoutMs: number;
  readonly #refillDelayMs: number;
  readonly #warm: WarmConnection[] = [];
  #refillTimer: NodeJS.Timeout | undefined;
  #target = 0;
  #closed = false;

  constructor(endpoint: ImapEndpoint, master: MasterCredentials, options: StoreConnectorOptions = {}) {
    this.#endpoint = endpoint;
    this.#master = master;
    this.#maxWarm = options.maxWarm ?? 8;
    this.#maxIdleMs = options.maxIdleMs ?? 20_000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
    this.#refillDelayMs = options.refillDelayMs ?? 50;
  }

  /** Connections waiting now (greeted or on their way). */
  get warm(): number {
    return this.#warm.length;
  }

  /** The store session of `mailbox`, on a waiting connection when there is one. */
  async open(mailbox: string, timeoutMs: number): Promise<StoreSession> {
    assertMailboxName(mailbox);
    const warm = this.#warm.shift();
    if (warm === undefined) this.#target = Math.min(this.#maxWarm, this.#target + 1);
    try {
      return await this.#login(warm, mailbox, timeoutMs);
    } finally {
      // Not during the login nor the client's first commands: the store starts a process for each
      // new connection, which would compete with the one serving this client (issue #16 profile).
      this.#scheduleRefill();
    }
  }

  async #login(warm: WarmConnection | undefined, mailbox: string, timeoutMs: number): Promise<StoreSession> {
    if (warm !== undefined) {
      clearTimeout(warm.expiry);
      armTimeout(warm, timeoutMs);
      try {
        return await loginOn(warm, warm.greeted, this.#endpoint, this.#master, mailbox);
      } catch (err) {
        if (!(err instanceof Error)) throw err;
        // The store answered and said no: another connection would hear the same.
        if (isGatewayError(err.cause) && err.cause.code === 'STORE_LOGIN_REFUSED') throw err;
        // Broken while waiting (store restarted, idle limit): a fresh connection, and none ahead.
        this.#target = 0;
      }
    }
    return openStoreSession(this.#endpoint, this.#master, mailbox, timeoutMs);
  }

  /** Closes the waiting connections; later logins connect each time. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#refillTimer);
    this.#target = 0;
    for (const warm of this.#warm.splice(0)) this.#discard(warm);
  }

  #scheduleRefill(): void {
    if (this.#refillTimer !== undefined || this.#closed) return;
    this.#refillTimer = setTimeout(() => {
      this.#refillTimer = undefined;
      this.#refill();
    }, this.#refillDelayMs).unref();
  }

  #refill(): void {
    while (!this.#closed && this.#warm.length < this.#target) this.#warm.push(this.#connect());
  }

  #connect(): WarmConnection {
    const connection = connectStore(this.#endpoint);
    armTimeout(connection, this.#connectTimeoutMs);
    const greeted = greet(connection.reader);
    const warm: WarmConnection = { ...connection, greeted, expiry: undefined };
    // Greeted while waiting: no more connect deadline, the idle one instead. A greeting that does
    // not come (refusal, deadline) closes the connection; a login that took it sees the failure.
    greeted.then(
      () => {
        if (!this.#warm.includes(warm)) return;
        connection.socket.setTimeout(0);
        warm.expiry = setTimeout(() => this.#expire(warm), this.#maxIdleMs).unref();
      },
      () => {
        this.#drop(warm);
        connection.socket.destroy();
      },
    );
    connection.socket.once('close', () => this.#drop(warm));
    return warm;
  }

  /** Unused for maxIdleMs: one fewer is kept. */
  #expire(warm: WarmConnection): void {
    this.#target = Math.max(0, this.#target - 1);
    this.#drop(warm);
    this.#discard(warm);
    this.#refill();
  }

  #drop(warm: WarmConnection): void {
    const at = this.#warm.indexOf(warm);
    if (at >= 0) this.#warm.splice(at, 1);
  }

  #discard(warm: WarmConnection): void {
    clearTimeout(warm.expiry);
    warm.greeted.catch(() => {});
    warm.socket.destroy();
  }
}
