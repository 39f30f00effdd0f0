/**
 * Cuts the client's byte stream into IMAP commands, with no I/O (STYLE.md: protocol parsing apart
 * from execution). A command is a line, or several lines joined by literals (RFC 9051 §4.3): a line
 * that ends with `{n}` (synchronising: the client waits for a `+` continuation, §7.5) or `{n+}`
 * (non-synchronising, RFC 7888 LITERAL+) is followed by exactly n octets, then the rest of the command.
 *
 * The caller feeds chunks with `push` and pulls one event at a time, so pipelined commands (several in
 * one packet, RFC 9051 §5.5) are executed in order, one after the other, and a command split across
 * packets simply yields nothing until it is complete. Limits are checked as bytes arrive: a line
 * longer than `maxLineBytes`, a literal larger than `maxLiteralBytes`, or a whole command larger than
 * both together is fatal (the session answers BAD and closes).
 */

export interface CommandLimits {
  /** Longest line (CRLF excluded) of a command or of a SASL response. */
  readonly maxLineBytes: number;
  /** Largest literal announced in a command. */
  readonly maxLiteralBytes: number;
}

/** A complete command: `lines[i]` is followed by `literals[i]`; the last line has no literal. */
export interface CommandFrame {
  readonly lines: readonly Buffer[];
  readonly literals: readonly Buffer[];
}

export type TooBigWhat = 'line' | 'literal' | 'command';

export type FrameEvent =
  | { readonly kind: 'frame'; readonly frame: CommandFrame }
  /** A synchronising literal was announced: answer `+` so the client sends it (RFC 9051 §7.5). */
  | { readonly kind: 'continue' }
  /** A limit was passed; `head` is the start of the command, to read its tag. Fatal. */
  | { readonly kind: 'too-big'; readonly what: TooBigWhat; readonly head: Buffer };

export type LineEvent =
  | { readonly kind: 'line'; readonly line: Buffer }
  | { readonly kind: 'too-big'; readonly what: 'line'; readonly head: Buffer };

/**
 * RFC 2971 §3.3 bounds an ID command: at most 30 pairs, a field of at most 30 octets, a value of at
 * most 1024. Quoted with every octet escaped that is 30 × (2 × 30 + 2 × 1024 + 6) octets; a command
 * that names ID may be that long, and no other gets more than the configured limits.
 */
export const MAX_ID_COMMAND_BYTES = 30 * (2 * 30 + 2 * 1024 + 6) + 64;
/** `tag SP "ID" SP`: the start of an ID command, before the rest of it has arrived. */
const ID_HEAD = /^[!-~]{1,64} ID[ (]/i;
const LF = 0x0a;
const CR = 0x0d;
/** A literal marker ends its line (RFC 9051 §9 `literal`); ten digits bound the number. */
const LITERAL_MARKER = /\{(\d{1,10})(\+?)\}$/;

interface PendingLiteral {
  readonly size: number;
  readonly synchronising: boolean;
  announced: boolean;
}

export class CommandFramer {
  readonly #limits: CommandLimits;
  #buf: Buffer = Buffer.alloc(0);
  #lines: Buffer[] = [];
  #literals: Buffer[] = [];
  #literal: PendingLiteral | undefined;
  #commandBytes = 0;
  #broken = false;

  constructor(limits: CommandLimits) {
    this.#limits = limits;
  }

  /** Bytes received and not yet consumed by an event. */
  get buffered(): number {
    return this.#buf.length;
  }

  /** Whether a command has started (some of its lines are read) without being complete. */
  get midCommand(): boolean {
    return this.#lines.length > 0 || this.#literal !== undefined;
  }

  push(chunk: Buffer): void {
    if (this.#broken || chunk.length === 0) return;
    this.#buf = this.#buf.length === 0 ? chunk : Buffer.concat([this.#buf, chunk]);
  }

  /**
   * Everything received and not consumed, and the framer emptied: after STARTTLS it is discarded
   * (RFC 9051 §6.2.1, the CVE-2011-0411 class of command injection); after login it goes to the store.
   */
  takeBuffered(): Buffer {
    const rest = this.#buf;
    this.#buf = Buffer.alloc(0);
    this.#lines = [];
    this.#literals = [];
    this.#literal = undefined;
    this.#commandBytes = 0;
    return rest;
  }

  /** The next command, a request for a `+` continuation, a fatal excess, or undefined: need more bytes. */
  nextCommand(): FrameEvent | undefined {
    while (!this.#broken) {
      if (this.#literal) {
        const event = this.#readLiteral(this.#literal);
        if (event !== 'done') return event;
        continue;
      }
      const line = this.#readLine(this.#maxLineBytes);
      if (line === undefined) return undefined;
      if (line.kind === 'too-big') return this.#fail('line', line.head);
      this.#lines.push(line.line);
      this.#commandBytes += line.line.length + 2;
      if (this.#commandBytes > this.#maxCommandBytes) return this.#fail('command', this.#head());
      const marker = LITERAL_MARKER.exec(line.line.toString('latin1'));
      if (marker) {
        const size = Number(marker[1]);
        if (size > this.#limits.maxLiteralBytes) return this.#fail('literal', this.#head());
        this.#commandBytes += size;
        if (this.#commandBytes > this.#maxCommandBytes) return this.#fail('command', this.#head());
        this.#literal = { size, synchronising: marker[2] !== '+', announced: false };
        continue;
      }
      const frame: CommandFrame = { lines: this.#lines, literals: this.#literals };
      this.#lines = [];
      this.#literals = [];
      this.#commandBytes = 0;
      return { kind: 'frame', frame };
    }
    return undefined;
  }

  /** One bare line: a client response in a SASL exchange (RFC 9051 §6.2.2), with no literal. */
  nextLine(): LineEvent | undefined {
    if (this.#broken) return undefined;
    const line = this.#readLine(this.#limits.maxLineBytes);
    if (line?.kind === 'too-big') this.#broken = true;
    return line;
  }

  /** A whole command may hold one maximal line and one maximal literal, not more (ID: its RFC bound). */
  get #maxCommandBytes(): number {
    const normal = this.#limits.maxLineBytes + this.#limits.maxLiteralBytes;
    return this.#isId() ? Math.max(normal, MAX_ID_COMMAND_BYTES) : normal;
  }

  get #maxLineBytes(): number {
    return this.#isId()
      ? Math.max(this.#limits.maxLineBytes, MAX_ID_COMMAND_BYTES)
      : this.#limits.maxLineBytes;
  }

  /** Whether the command being read is an ID (its first line, read or still arriving). */
  #isId(): boolean {
    const first = this.#lines[0] ?? this.#buf.subarray(0, 80);
    return ID_HEAD.test(first.subarray(0, 80).toString('latin1'));
  }

  #readLiteral(literal: PendingLiteral): FrameEvent | undefined | 'done' {
    if (this.#buf.length < literal.size) {
      if (literal.synchronising && !literal.announced) {
        literal.announced = true;
        return { kind: 'continue' };
      }
      return undefined;
    }
    this.#literals.push(Buffer.from(this.#buf.subarray(0, literal.size)));
    this.#buf = this.#buf.subarray(literal.size);
    this.#literal = undefined;
    return 'done';
  }

  /** A line up to LF (CR before it optional, for robustness), or too-big once the limit is passed. */
  #readLine(max: number): LineEvent | undefined {
    const lf = this.#buf.subarray(0, max + 2).indexOf(LF);
    if (lf < 0) {
      return this.#buf.length > max + 1 ? { kind: 'too-big', what: 'line', head: this.#head() } : undefined;
    }
    const end = lf > 0 && this.#buf[lf - 1] === CR ? lf - 1 : lf;
    if (end > max) return { kind: 'too-big', what: 'line', head: this.#head() };
    const line = Buffer.from(this.#buf.subarray(0, end));
    this.#buf = this.#buf.subarray(lf + 1);
    return { kind: 'line', line };
  }

  #head(): Buffer {
    return this.#lines[0] ?? this.#buf.subarray(0, 64);
  }

  #fail(what: TooBigWhat, head: Buffer): FrameEvent {
    this.#broken = true;
    return { kind: 'too-big', what, head: Buffer.from(head.subarray(0, 64)) };
  }
}
