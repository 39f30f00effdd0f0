import net from 'node:net';
import tls from 'node:tls';
import { DeadlineQueue } from './deadline-queue.js';

export interface ImapTlsOptions {
  readonly ca?: string | string[];
  readonly key?: string;
  readonly cert?: string;
}

/** What a tagged command produced: the untagged and continuation lines, then the tagged line. */
export interface ImapReply {
  readonly untagged: readonly string[];
  readonly tagged: string;
}

/**
 * A raw IMAP client for transcripts: sends exactly the bytes a test gives and reads lines, so tests
 * can drive malformed input and assert exact responses. Every wait has a deadline.
 */
export class ImapTranscript {
  #socket: net.Socket;
  #buffer = '';
  readonly #lines = new DeadlineQueue<string>();

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    this.#attach(socket);
  }

  /** Connects on plain TCP (STARTTLS port) or with TLS (implicit port); returns after the greeting. */
  static async connect(
    port: number,
    /** `localAddress`: the source address (any of 127.0.0.0/8), to act as distinct clients. */
    options: { tls?: ImapTlsOptions; localAddress?: string } = {},
  ): Promise<{ client: ImapTranscript; greeting: string }> {
    const local = options.localAddress === undefined ? {} : { localAddress: options.localAddress };
    const socket = options.tls
      ? tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ...local, ...options.tls })
      : net.connect({ port, host: '127.0.0.1', ...local });
    await new Promise<void>((resolve, reject) => {
      socket.once(options.tls ? 'secureConnect' : 'connect', resolve);
      socket.once('error', reject);
    });
    const client = new ImapTranscript(socket);
    return { client, greeting: await client.readLine() };
  }

  get socket(): net.Socket {
    return this.#socket;
  }

  get closed(): boolean {
    return this.#lines.closed;
  }

  #attach(socket: net.Socket): void {
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      this.#buffer += chunk;
      let idx: number;
      while ((idx = this.#buffer.indexOf('\r\n')) >= 0) {
        this.#lines.push(this.#buffer.slice(0, idx));
        this.#buffer = this.#buffer.slice(idx + 2);
      }
    });
    const onEnd = () => this.#lines.close();
    socket.on('end', onEnd);
    socket.on('close', onEnd);
    socket.on('error', onEnd);
  }

  readLine(timeoutMs = 10_000): Promise<string> {
    return this.#lines.shift(timeoutMs, 'line');
  }

  /** Every line until the server closes the connection. */
  readToEnd(timeoutMs = 10_000): Promise<string[]> {
    return this.#lines.untilClosed(timeoutMs);
  }

  /** Lines up to and including the one starting with `tag `. */
  async readTagged(tag: string): Promise<ImapReply> {
    const untagged: string[] = [];
    for (;;) {
      const line = await this.readLine();
      if (line.startsWith(`${tag} `)) return { untagged, tagged: line };
      untagged.push(line);
    }
  }

  write(data: string | Buffer): void {
    this.#socket.write(data);
  }

  async command(tag: string, text: string): Promise<ImapReply> {
    this.write(`${tag} ${text}\r\n`);
    return this.readTagged(tag);
  }

  /** STARTTLS then the handshake; `before` is written right after the command, in the same packet. */
  async startTls(
    options: ImapTlsOptions = {},
    before = '',
  ): Promise<{ reply: string; socket: tls.TLSSocket }> {
    this.write(`S STARTTLS\r\n${before}`);
    const reply = await this.readLine();
    if (!reply.startsWith('S OK')) throw new Error(`STARTTLS refused: ${reply}`);
    const plain = this.#socket;
    plain.removeAllListeners('data');
    plain.removeAllListeners('end');
    plain.removeAllListeners('close');
    plain.removeAllListeners('error');
    const socket = tls.connect({ socket: plain, servername: 'localhost', ...options });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    this.#socket = socket;
    this.#attach(socket);
    return { reply, socket };
  }

  /** Lines already received and not read. */
  pending(): string[] {
    return this.#lines.snapshot();
  }

  destroy(): void {
    this.#socket.destroy();
  }
}
