import net from 'node:net';
import tls from 'node:tls';
import { DeadlineQueue } from './deadline-queue.js';

/** One SMTP reply: code, enhanced status code (when present) and the text lines. */
export interface Reply {
  readonly code: number;
  readonly enhanced?: string;
  readonly lines: readonly string[];
  /** The last line as sent, e.g. `550 5.7.1 Relaying denied`. */
  readonly raw: string;
}

export interface TlsIdentity {
  readonly key?: string | Buffer;
  readonly cert?: string | Buffer;
  readonly ca?: string | Buffer | Array<string | Buffer>;
  readonly session?: Buffer;
  readonly minVersion?: tls.SecureVersion;
  readonly maxVersion?: tls.SecureVersion;
  readonly ciphers?: string;
}

/**
 * A raw SMTP client for transcripts: sends exactly the bytes a test gives and parses replies, so tests
 * can drive malformed input and assert exact reply codes. Every wait has a deadline.
 */
export class SmtpTranscript {
  #socket: net.Socket | tls.TLSSocket;
  #buffer = '';
  readonly #replies = new DeadlineQueue<Reply>();
  tlsSession: Buffer | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  static async connect(
    port: number,
    host = '127.0.0.1',
    /** The source address (any of 127.0.0.0/8), to act as distinct clients. */
    localAddress?: string,
  ): Promise<{ client: SmtpTranscript; greeting: Reply }> {
    const socket = net.connect({ port, host, ...(localAddress === undefined ? {} : { localAddress }) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new SmtpTranscript(socket);
    return { client, greeting: await client.read() };
  }

  #attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      this.#parse();
    });
    socket.on('close', () => this.#replies.close());
    socket.on('error', () => this.#replies.close());
  }

  #parse(): void {
    const lines: string[] = [];
    let idx: number;
    while ((idx = this.#buffer.indexOf('\r\n')) >= 0) {
      const line = this.#buffer.slice(0, idx);
      this.#buffer = this.#buffer.slice(idx + 2);
      lines.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        const m = /^(\d{3})[ -]((?:[245]\.\d{1,3}\.\d{1,3}) )?/.exec(line);
        this.#replies.push({
          code: Number(line.slice(0, 3)),
          ...(m?.[2] ? { enhanced: m[2].trim() } : {}),
          lines: [...this.#pendingLines, ...lines].map((l) => l.slice(4)),
          raw: line,
        });
        this.#pendingLines = [];
        lines.length = 0;
      }
    }
    this.#pendingLines.push(...lines);
  }
  #pendingLines: string[] = [];

  get closed(): boolean {
    return this.#replies.closed;
  }

  read(timeoutMs = 10_000): Promise<Reply> {
    return this.#replies.shift(timeoutMs, 'reply');
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  async command(line: string): Promise<Reply> {
    this.write(`${line}\r\n`);
    return this.read();
  }

  /** STARTTLS then the TLS handshake; resolves with the TLS socket's view of the session. */
  async startTls(identity: TlsIdentity = {}): Promise<{ reply: Reply; socket: tls.TLSSocket }> {
    const reply = await this.command('STARTTLS');
    if (reply.code !== 220) throw new Error(`STARTTLS refused: ${reply.raw}`);
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const socket = tls.connect({
      socket: plain,
      servername: 'localhost',
      rejectUnauthorized: identity.ca !== undefined,
      ...identity,
    });
    socket.on('session', (s: Buffer) => (this.tlsSession = s));
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    this.#socket = socket;
    this.#attach(socket);
    return { reply, socket };
  }

  /** Sends a message body with dot-stuffing and the final dot. */
  async data(body: string | Buffer): Promise<Reply> {
    const r = await this.command('DATA');
    if (r.code !== 354) return r;
    const text = (Buffer.isBuffer(body) ? body.toString('latin1') : body).replace(/(^|\r\n)\./g, '$1..');
    this.write(Buffer.from(text.endsWith('\r\n') ? `${text}.\r\n` : `${text}\r\n.\r\n`, 'latin1'));
    return this.read(30_000);
  }

  async quit(): Promise<void> {
    if (!this.closed) {
      await this.command('QUIT').catch(() => undefined);
    }
    this.#socket.destroy();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
