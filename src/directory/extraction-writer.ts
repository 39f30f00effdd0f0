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
  readonly #inFlight: { reply: Promise<unknown>; bytes: number; done?: () => void }[] = [];
  #bytes = 0;
  #failed = false;
  #failure: unknown;

  constructor(
    readonly redis: Redis,
    private readonly maxBytesInFlight: number,
  ) {}

  /**
   * Sends bytes built by the caller: one complete command, `name` its first word, `key` its key.
   * `done` is called once its reply came (the bytes may be reused then).
   */
  sendWire(name: string, key: string, wire: Buffer, done?: () => void): void {
    const reply = this.redis.sendCommand(new WireCommand(name, key, wire)) as Promise<unknown>;
    this.track(reply, wire.length, done);
  }

  /** Follows a command sent by other means (its reply is checked when the pipe drains). */
  track(reply: Promise<unknown>, bytes: number, done?: () => void): void {
    // Every reply has a handler from now on: a failure is reported by drain(), not as unhandled.
    reply.catch((err: unknown) => {
      if (!this.#failed) [this.#failed, this.#failure] = [true, err];
    });
    this.#inFlight.push({ reply, bytes, ...(done ? { done } : {}) });
    this.#bytes += bytes;
  }

  /** Waits until at most `maxBytes` are unanswered (all of them with 0); throws the first failure. */
  async drain(maxBytes = this.maxBytesInFlight): Promise<void> {
    while (this.#bytes > maxBytes || (maxBytes === 0 && this.#inFlight.length > 0)) {
      const oldest = this.#inFlight.shift()!;
      await oldest.reply.catch(() => undefined);
      this.#bytes -= oldest.bytes;
      oldest.done?.();
      if (this.#failed) break;
    }
    if (this.#failed) throw this.#failure;
  }
}

function decimalDigits(n: number): number {
  let digits = 1;
  for (let rest = n; rest >= 10; rest = Math.floor(rest / 10)) digits++;
  return digits;
}

/** Writes n in decimal at `at`; the new end. */
function writeDecimal(buf: Buffer, at: number, n: number): number {
  const digits = decimalDigits(n);
  for (let i = at + digits - 1; i >= at; i--) {
    buf[i] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  }
  return at + digits;
}

/** `$` + three digits + CRLF: where a value written in place starts (most values are 100-999 bytes). */
const GUESSED_VALUE_HEAD = 6;

/**
 * Builds `HSET key field value ...` commands and sends each when it holds `maxFields` fields or
 * `bodyBytes` bytes. Each command is built in a buffer of its own, its head written last in the room
 * left before the fields; the buffer is reused once Redis answered (a load sends hundreds of MiB:
 * allocating each anew kept the garbage collector busy).
 */
export class HashWriter {
  readonly #head: number;
  readonly #free: Buffer[] = [];
  #body: Buffer;
  #at: number;
  #fields = 0;
  /** Where the value of the entry begun last starts its `$<length>` head. */
  #valueHead = 0;

  constructor(
    private readonly pipe: CommandPipe,
    private readonly key: string,
    private readonly maxFields: number,
    private readonly bodyBytes: number,
  ) {
    // `*<count>\r\n$4\r\nHSET\r\n$<key length>\r\n<key>\r\n`, counts of up to 20 digits.
    this.#head = Buffer.byteLength(key) + 64;
    this.#body = Buffer.allocUnsafe(this.#head + bodyBytes);
    this.#at = this.#head;
  }

  /** field (bytes [fs, fe) of `field`) → bytes [vs, ve) of `value`. */
  add(field: Uint8Array, fs: number, fe: number, value: Uint8Array, vs: number, ve: number): void {
    this.#room(fe - fs + (ve - vs) + 32);
    this.#at = this.#bulk(value, vs, ve, this.#bulk(field, fs, fe, this.#at));
    if (++this.#fields >= this.maxFields) this.flush();
  }

  /**
   * Starts a field (bytes [fs, fe) of `field`) whose value the caller writes into `buffer` from the
   * offset returned, at most `valueBound` bytes, then ends by endEntry(). The value is written in
   * place, not copied from elsewhere; its length goes in front of it once known (it is moved by a
   * byte or two when its length has other than three digits).
   */
  beginEntry(field: Uint8Array, fs: number, fe: number, valueBound: number): number {
    this.#room(fe - fs + valueBound + 48);
    this.#valueHead = this.#bulk(field, fs, fe, this.#at);
    return this.#valueHead + GUESSED_VALUE_HEAD;
  }

  /** The buffer beginEntry() gave an offset in (read after it: a full command is sent and replaced). */
  get buffer(): Buffer {
    return this.#body;
  }

  /** Ends the entry begun last, whose value the caller wrote up to `valueEnd`. */
  endEntry(valueEnd: number): void {
    const body = this.#body;
    const head = this.#valueHead;
    const written = head + GUESSED_VALUE_HEAD;
    const length = valueEnd - written;
    const digits = decimalDigits(length);
    // `$<length>\r\n` before the value.
    const start = head + digits + 3;
    if (start !== written) body.copyWithin(start, written, valueEnd);
    body[head] = 0x24; // '$'
    writeDecimal(body, head + 1, length);
    body[start - 2] = 0x0d;
    body[start - 1] = 0x0a;
    let at = start + length;
    body[at++] = 0x0d;
    body[at++] = 0x0a;
    this.#at = at;
    if (++this.#fields >= this.maxFields) this.flush();
  }

  /** field → value, both strings. */
  addText(field: string, value: string): void {
    const f = Buffer.from(field, 'utf8');
    const v = Buffer.from(value, 'utf8');
    this.add(f, 0, f.length, v, 0, v.length);
  }

  /** Sends what is buffered, if anything. */
  flush(): void {
    if (this.#fields === 0) return;
    const head = `*${2 + this.#fields * 2}\r\n$4\r\nHSET\r\n$${Buffer.byteLength(this.key)}\r\n${this.key}\r\n`;
    const body = this.#body;
    const start = this.#head - Buffer.byteLength(head);
    body.write(head, start, 'utf8');
    const size = body.length;
    this.pipe.sendWire('hset', this.key, body.subarray(start, this.#at), () => {
      if (size === this.#head + this.bodyBytes) this.#free.push(body);
    });
    this.#body = this.#free.pop() ?? Buffer.allocUnsafe(this.#head + this.bodyBytes);
    this.#at = this.#head;
    this.#fields = 0;
  }

  #room(bytes: number): void {
    if (this.#at + bytes <= this.#body.length) return;
    this.flush();
    if (this.#head + bytes > this.#body.length) this.#body = Buffer.allocUnsafe(this.#head + bytes);
  }

  /** `$<length>\r\n<bytes>\r\n` at `at` (RESP bulk string); the new end. */
  #bulk(bytes: Uint8Array, start: number, end: number, at: number): number {
    const body = this.#body;
    body[at] = 0x24; // '$'
    at = writeDecimal(body, at + 1, end - start);
    body[at++] = 0x0d;
    body[at++] = 0x0a;
    // A loop, not subarray() + set(): a view object per field was most of the load's garbage.
    for (let i = start; i < end; i++) body[at++] = bytes[i]!;
    body[at++] = 0x0d;
    body[at++] = 0x0a;
    return at;
  }
}
