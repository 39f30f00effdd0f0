import { GatewayError, isGatewayError } from '../errors/index.js';
import type { CommandFrame } from './command-framer.js';

/**
 * Reads a framed command into tag, name and arguments (RFC 9051 §9 formal syntax), with no I/O and
 * no knowledge of what a command means. Only what a pre-authentication command can hold is read:
 * atoms, quoted strings, literals and parenthesised lists (ID). Anything else is a syntax error
 * that the session answers with BAD.
 */

export type Arg =
  | { readonly type: 'atom'; readonly value: string }
  | { readonly type: 'string'; readonly value: Buffer; readonly literal: boolean }
  | { readonly type: 'list'; readonly items: readonly Arg[] };

export interface RawCommand {
  readonly tag: string;
  /** Upper-cased command name. */
  readonly name: string;
  readonly args: readonly Arg[];
}

export type SyntaxResult =
  | { readonly ok: true; readonly command: RawCommand }
  | { readonly ok: false; readonly tag: string | undefined; readonly text: string };

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
const MAX_LIST_DEPTH = 8;

/**
 * ATOM-CHAR: any CHAR except atom-specials — "(" ")" "{" SP CTL "%" "*" DQUOTE "\" "]" (RFC 9051 §9).
 * ASTRING-CHAR adds "]"; a tag is ASTRING-CHAR except "+".
 */
function isAtomChar(byte: number): boolean {
  if (byte <= 0x20 || byte >= 0x7f) return false;
  return !'(){%*"\\]'.includes(String.fromCharCode(byte));
}

function isAstringChar(byte: number): boolean {
  return isAtomChar(byte) || byte === 0x5d;
}

function isTagChar(byte: number): boolean {
  return isAstringChar(byte) && byte !== 0x2b;
}

/**
 * The tag at the start of a line, if one can be read (for BAD replies to broken commands). For the
 * head of an over-long line (`partial`), only a tag followed by SP counts.
 */
export function readTag(line: Buffer, partial = false): string | undefined {
  let end = 0;
  while (end < line.length && isTagChar(line[end]!)) end++;
  if (end === 0 || (end < line.length && line[end] !== SP) || (partial && end === line.length)) {
    return undefined;
  }
  return line.toString('latin1', 0, end);
}

/** A command the grammar refuses; its message goes into the `BAD Syntax error: …` reply. */
function syntaxError(text: string): GatewayError {
  return new GatewayError('IMAP_COMMAND_SYNTAX', text);
}

/** A cursor over the frame's lines; a literal marker at a line's end yields the literal after it. */
class Cursor {
  readonly #frame: CommandFrame;
  #line = 0;
  #pos = 0;

  constructor(frame: CommandFrame) {
    this.#frame = frame;
  }

  get #text(): Buffer {
    return this.#frame.lines[this.#line]!;
  }

  peek(): number | undefined {
    return this.#text[this.#pos];
  }

  atEnd(): boolean {
    return this.#line === this.#frame.lines.length - 1 && this.#pos >= this.#text.length;
  }

  take(): number {
    const byte = this.peek();
    if (byte === undefined) throw syntaxError('unexpected end of command');
    this.#pos++;
    return byte;
  }

  expect(byte: number, what: string): void {
    if (this.peek() !== byte) throw syntaxError(`expected ${what}`);
    this.#pos++;
  }

  run(accept: (byte: number) => boolean): Buffer {
    const start = this.#pos;
    while (this.#pos < this.#text.length && accept(this.#text[this.#pos]!)) this.#pos++;
    return this.#text.subarray(start, this.#pos);
  }

  /** At `{`: the marker must end the line (the framer cut there); the literal follows it. */
  literal(): Buffer {
    const rest = this.#text.toString('latin1', this.#pos);
    const literal = this.#frame.literals[this.#line];
    if (!/^\{\d+\+?\}$/.test(rest) || literal === undefined) throw syntaxError('malformed literal');
    this.#line++;
    this.#pos = 0;
    // CHAR8 excludes NUL (RFC 9051 §9 `literal`).
    if (literal.includes(0)) throw syntaxError('NUL in literal');
    return literal;
  }
}

function readQuoted(c: Cursor): Buffer {
  c.expect(DQUOTE, 'a quoted string');
  const out: number[] = [];
  for (;;) {
    const byte = c.take();
    if (byte === DQUOTE) return Buffer.from(out);
    if (byte === BACKSLASH) {
      const escaped = c.take();
      // quoted-specials are the only escapes (RFC 9051 §9 QUOTED-CHAR).
      if (escaped !== DQUOTE && escaped !== BACKSLASH) throw syntaxError('bad escape in quoted string');
      out.push(escaped);
    } else if (byte === 0) {
      throw syntaxError('NUL in quoted string');
    } else {
      // TEXT-CHAR or UTF-8 (RFC 9051 §9 QUOTED-CHAR): any byte but CR, LF (never in a line) and NUL.
      out.push(byte);
    }
  }
}

function readList(c: Cursor, depth: number): Arg {
  if (depth > MAX_LIST_DEPTH) throw syntaxError('lists nested too deep');
  c.expect(0x28, '(');
  const items: Arg[] = [];
  if (c.peek() === 0x29) {
    c.take();
    return { type: 'list', items };
  }
  for (;;) {
    items.push(readArg(c, depth + 1));
    const next = c.take();
    if (next === 0x29) return { type: 'list', items };
    if (next !== SP) throw syntaxError('expected SP or ) in list');
  }
}

function readArg(c: Cursor, depth: number): Arg {
  const byte = c.peek();
  if (byte === DQUOTE) return { type: 'string', value: readQuoted(c), literal: false };
  if (byte === 0x7b) return { type: 'string', value: c.literal(), literal: true };
  if (byte === 0x28) return readList(c, depth);
  const atom = c.run(isAstringChar);
  if (atom.length === 0) throw syntaxError('expected an argument');
  return { type: 'atom', value: atom.toString('latin1') };
}

/** `tag SP command *(SP argument)`, single spaces, nothing after the last argument. */
export function parseCommand(frame: CommandFrame): SyntaxResult {
  const first = frame.lines[0] ?? Buffer.alloc(0);
  const tag = readTag(first);
  if (tag === undefined) return { ok: false, tag: undefined, text: 'Missing or invalid tag' };
  const c = new Cursor(frame);
  try {
    c.run(isTagChar);
    c.expect(SP, 'SP after the tag');
    const name = c.run(isAtomChar).toString('latin1').toUpperCase();
    if (name.length === 0 || !/^[A-Z0-9-]+$/.test(name)) throw syntaxError('invalid command name');
    const args: Arg[] = [];
    while (!c.atEnd()) {
      c.expect(SP, 'SP between arguments');
      args.push(readArg(c, 0));
    }
    return { ok: true, command: { tag, name, args } };
  } catch (err) {
    if (isGatewayError(err) && err.code === 'IMAP_COMMAND_SYNTAX')
      return { ok: false, tag, text: `Syntax error: ${err.message}` };
    throw err;
  }
}
