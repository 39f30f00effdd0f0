import { Command, type Redis } from 'ioredis';

/**
 * Writing the extraction to Redis at the speed of the wire: HSET commands are built straight into
 * their RESP bytes (a megabyte and thousands of fields each) and pipelined on the load's own
 * connection, awaiting replies only when too many bytes are unanswered. Encoding 1,000,000
 * arguments through ioredis, one string at a time, was most of the load's CPU time.
 */

/** A command whose wire bytes the caller built: ioredis writes them as they are and reads one reply. */
class WireCommand extends Command {
  readonly #wire: Buffer;
  constructor(name: string, key: string, wire: Buffer) {
    super(name, [key], { replyEncoding: 'utf8' });
    this.#wire = wire;
  }
  override toWritable(): Buffer {
    return this.#wire;
  }
}

/** Commands in flight on one connection, awaited oldest first when too many bytes are unanswered. */
export class CommandPipe {
  readonly #inFlight: { reply: Promise<unknown>; bytes: number }[] = [];
  #bytes = 0;
  #failed = false;
  #failure: unknown;

  constructor(
    readonly redis: Redis,
    private readonly maxBytesInFlight: number,
  ) {}

  /** Sends bytes built by the caller: one complete command, `name` its first word, `key` its key. */
  sendWire(name: string, key: string, wire: Buffer): void {
    this.track(this.redis.sendCommand(new WireCommand(name, key, wire)) as Promise<unknown>, wire.length);
  }

  /** Follows a command sent by other means (its reply is checked when the pipe drains). */
  track(reply: Promise<unknown>, bytes: number): void {
    // Every reply has a handler from now on: a failure is reported by drain(), not as unhandled.
    reply.catch((err: unknown) => {
      if (!this.#failed) [this.#failed, this.#failure] = [true, err];
    });
    this.#inFlight.push({ reply, bytes });
    this.#bytes += bytes;
  }

  /** Waits until at most `maxBytes` are unanswered (all of them with 0); throws the first failure. */
  async drain(maxBytes = this.maxBytesInFlight): Promise<void> {
    while (this.#bytes > maxBytes || (maxBytes === 0 && this.#inFlight.length > 0)) {
      const oldest = this.#inFlight.shift()!;
      await oldest.reply.catch(() => undefined);
      this.#bytes -= oldest.bytes;
      if (this.#failed) break;
    }
    if (this.#failed) throw this.#failure;
  }
}

const CRLF = 0x0d0a;

/** Writes n in decimal at `at`; the new end. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  if (n < 10) {
    buf[at] = 0x30 + n;
    return at + 1;
  }
  return at + buf.write(String(n), at, 'latin1');
}

/**
 * Builds `HSET key field value ...` commands into one buffer and sends each when it holds
 * `maxFields` fields or `bodyBytes` bytes.
 */
export class HashWriter {
  #body: Buffer;
  #at = 0;
  #fields = 0;

  constructor(
    private readonly pipe: CommandPipe,
    private readonly key: string,
    private readonly maxFields: number,
    private readonly bodyBytes: number,
  ) {
    this.#body = Buffer.allocUnsafe(bodyBytes);
  }

  /** field → bytes [start, end) of `value`. */
  add(field: string, value: Buffer, start: number, end: number): void {
    const fieldBytes = Buffer.byteLength(field);
    this.#room(fieldBytes + (end - start) + 32);
    const body = this.#body;
    let at = this.#bulkHead(fieldBytes);
    at += body.write(field, at, fieldBytes, 'utf8');
    body.writeUInt16BE(CRLF, at);
    at = this.#bulkHeadAt(at + 2, end - start);
    at += value.copy(body, at, start, end);
    body.writeUInt16BE(CRLF, at);
    this.#at = at + 2;
    this.#counted();
  }

  /** field → value, both strings. */
  addText(field: string, value: string): void {
    const valueBytes = Buffer.from(value, 'utf8');
    this.add(field, valueBytes, 0, valueBytes.length);
  }

  /** Sends what is buffered, if anything. */
  flush(): void {
    if (this.#fields === 0) return;
    const keyBytes = Buffer.byteLength(this.key);
    const head = Buffer.from(
      `*${2 + this.#fields * 2}\r\n$4\r\nHSET\r\n$${keyBytes}\r\n${this.key}\r\n`,
      'utf8',
    );
    this.pipe.sendWire('hset', this.key, Buffer.concat([head, this.#body.subarray(0, this.#at)]));
    this.#at = 0;
    this.#fields = 0;
  }

  #counted(): void {
    if (++this.#fields >= this.maxFields) this.flush();
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= this.#body.length) return;
    this.flush();
    if (bytes > this.#body.length) this.#body = Buffer.allocUnsafe(Math.max(bytes, this.bodyBytes));
  }

  #bulkHead(length: number): number {
    return this.#bulkHeadAt(this.#at, length);
  }

  /** `$<length>\r\n` at `at`; the new end. */
  #bulkHeadAt(at: number, length: number): number {
    const body = this.#body;
    body[at] = 0x24; // '$'
    at = writeDecimal(body, at + 1, length);
    body.writeUInt16BE(CRLF, at);
    return at + 2;
  }
}
