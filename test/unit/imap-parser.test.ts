import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CommandFramer, type FrameEvent } from '../../src/imap/command-framer.js';
import { parseCommand, readTag, type Arg } from '../../src/imap/command-syntax.js';
import { decodePreauthCommand } from '../../src/imap/preauth-commands.js';

const limits = { maxLineBytes: 1024, maxLiteralBytes: 2048 };

/** Feeds the chunks and collects every event, as the session would (pulling until none is left). */
function run(chunks: Array<string | Buffer>, l = limits): FrameEvent[] {
  const framer = new CommandFramer(l);
  const events: FrameEvent[] = [];
  for (const chunk of chunks) {
    framer.push(typeof chunk === 'string' ? Buffer.from(chunk, 'latin1') : chunk);
    for (let e = framer.nextCommand(); e; e = framer.nextCommand()) events.push(e);
  }
  return events;
}

/** Plain view of an argument for comparisons: strings as text. */
function view(arg: Arg): unknown {
  if (arg.type === 'atom') return arg.value;
  if (arg.type === 'string') return { [arg.literal ? 'literal' : 'quoted']: arg.value.toString('utf8') };
  return arg.items.map(view);
}

/** Every event as a compact value: a command as [tag, name, ...args], a syntax error as BAD. */
function commands(chunks: Array<string | Buffer>, l = limits): unknown[] {
  return run(chunks, l).map((e) => {
    if (e.kind === 'continue') return '+';
    if (e.kind === 'too-big') return { tooBig: e.what, tag: readTag(e.head, true) ?? null };
    const parsed = parseCommand(e.frame);
    if (!parsed.ok) return { bad: parsed.tag ?? '*' };
    return [parsed.command.tag, parsed.command.name, ...parsed.command.args.map(view)];
  });
}

describe('IMAP command framing and syntax (RFC 9051 §4, §9)', () => {
  it.each<[string, Array<string | Buffer>, unknown[]]>([
    ['a simple command', ['a1 CAPABILITY\r\n'], [['a1', 'CAPABILITY']]],
    ['a lower-case name', ['x noop\r\n'], [['x', 'NOOP']]],
    ['a bare LF', ['a1 NOOP\n'], [['a1', 'NOOP']]],
    ['split across packets', ['a1 CAPA', 'BILI', 'TY\r', '\n'], [['a1', 'CAPABILITY']]],
    [
      'pipelined commands in one packet',
      ['a1 CAPABILITY\r\na2 NOOP\r\na3 LOGOUT\r\n'],
      [
        ['a1', 'CAPABILITY'],
        ['a2', 'NOOP'],
        ['a3', 'LOGOUT'],
      ],
    ],
    [
      'quoted strings with escapes and UTF-8',
      [Buffer.from('a LOGIN "dr \\"house\\"@x" "pässwörd\\\\"\r\n', 'utf8')],
      [['a', 'LOGIN', { quoted: 'dr "house"@x' }, { quoted: 'pässwörd\\' }]],
    ],
    [
      'a synchronising literal: continuation, then the data in later packets',
      ['a LOGIN {4}\r\n', 'us', 'er {3}\r\n', 'pwd\r\n'],
      ['+', '+', ['a', 'LOGIN', { literal: 'user' }, { literal: 'pwd' }]],
    ],
    [
      'a non-synchronising literal (RFC 7888): no continuation',
      ['a LOGIN {4+}\r\nuser {4+}\r\npass\r\n'],
      [['a', 'LOGIN', { literal: 'user' }, { literal: 'pass' }]],
    ],
    [
      'a literal holding CRLF and spaces',
      ['a LOGIN u {6+}\r\n a\r\nb \r\n'],
      [['a', 'LOGIN', 'u', { literal: ' a\r\nb ' }]],
    ],
    [
      'ID with a parenthesised list and NIL',
      ['a ID ("name" "imapflow" "version" NIL)\r\n'],
      [['a', 'ID', [{ quoted: 'name' }, { quoted: 'imapflow' }, { quoted: 'version' }, 'NIL']]],
    ],
    ['an empty list', ['a ID ()\r\n'], [['a', 'ID', []]]],
    [
      'SASL-IR with base64 padding',
      ['a AUTHENTICATE PLAIN AHVAeABw=\r\n'],
      [['a', 'AUTHENTICATE', 'PLAIN', 'AHVAeABw=']],
    ],
  ])('%s', (_name, chunks, expected) => {
    expect(commands(chunks)).toEqual(expected);
  });

  it('asks for each synchronising literal once, before its data arrives (RFC 9051 §7.5)', () => {
    const framer = new CommandFramer(limits);
    framer.push(Buffer.from('a LOGIN {4}\r\n'));
    expect(framer.nextCommand()).toEqual({ kind: 'continue' });
    expect(framer.nextCommand()).toBeUndefined();
    framer.push(Buffer.from('us'));
    expect(framer.nextCommand()).toBeUndefined();
    framer.push(Buffer.from('er {3}\r\n'));
    expect(framer.nextCommand()).toEqual({ kind: 'continue' });
    framer.push(Buffer.from('pwd\r\nb NOOP\r\n'));
    const first = framer.nextCommand();
    expect(first?.kind).toBe('frame');
    const parsed = first?.kind === 'frame' ? parseCommand(first.frame) : undefined;
    expect(parsed?.ok && parsed.command.args.map(view)).toEqual([{ literal: 'user' }, { literal: 'pwd' }]);
    const second = framer.nextCommand();
    expect(second?.kind === 'frame' && parseCommand(second.frame)).toMatchObject({
      ok: true,
      command: { tag: 'b' },
    });
  });

  it('does not ask for a literal the client already sent (it did not wait)', () => {
    expect(commands(['a LOGIN {4}\r\nuser {4}\r\npass\r\n'])).toEqual([
      ['a', 'LOGIN', { literal: 'user' }, { literal: 'pass' }],
    ]);
  });

  it.each<[string, string, string | null]>([
    ['no tag', ' NOOP\r\n', null],
    ['a tag with +', 'a+ NOOP\r\n', null],
    ['a star tag', '* NOOP\r\n', null],
    ['a tag alone', 'a1\r\n', 'a1'],
    ['two spaces', 'a1  NOOP\r\n', 'a1'],
    ['a trailing space', 'a1 NOOP \r\n', 'a1'],
    ['an unterminated quoted string', 'a1 LOGIN "abc\r\n', 'a1'],
    ['a bad escape', 'a1 LOGIN "a\\b" c\r\n', 'a1'],
    ['a literal marker in the middle of a line', 'a1 LOGIN {3} x\r\n', 'a1'],
    ['an unbalanced list', 'a1 ID ("a" "b"\r\n', 'a1'],
    ['a NUL in a line', 'a1 NO\x00OP\r\n', 'a1'],
    ['an empty line', '\r\n', null],
    ['8-bit in the command name', 'a1 N\xffOP\r\n', 'a1'],
  ])('answers %s with BAD (tag %s)', (_name, input, tag) => {
    expect(commands([input])).toEqual([{ bad: tag ?? '*' }]);
  });

  it('refuses a NUL inside a literal (CHAR8, RFC 9051 §9)', () => {
    expect(commands(['a LOGIN {3+}\r\na\x00b x\r\n'])).toEqual([{ bad: 'a' }]);
  });

  it('refuses lists nested too deep', () => {
    expect(commands([`a ID ${'('.repeat(20)}${')'.repeat(20)}\r\n`])).toEqual([{ bad: 'a' }]);
  });

  it('keeps going after a syntax error', () => {
    expect(commands(['a1 LOGIN "x\r\na2 NOOP\r\n'])).toEqual([{ bad: 'a1' }, ['a2', 'NOOP']]);
  });
});

describe('IMAP limits', () => {
  it('accepts a line of exactly maxLineBytes', () => {
    const line = `a NOOP${' '.repeat(0)}`.padEnd(limits.maxLineBytes, 'X');
    const events = run([`${line}\r\n`]);
    expect(events).toHaveLength(1);
    expect(events[0]?.kind).toBe('frame');
  });

  it('refuses a longer line, as soon as the bytes are there, with the tag when it is readable', () => {
    expect(commands([`a7 LOGIN ${'x'.repeat(limits.maxLineBytes)}`])).toEqual([
      { tooBig: 'line', tag: 'a7' },
    ]);
    expect(commands(['x'.repeat(limits.maxLineBytes + 10)])).toEqual([{ tooBig: 'line', tag: null }]);
  });

  it('is done after a fatal excess: later bytes yield nothing', () => {
    const framer = new CommandFramer(limits);
    framer.push(Buffer.from('y'.repeat(limits.maxLineBytes + 10)));
    expect(framer.nextCommand()?.kind).toBe('too-big');
    framer.push(Buffer.from('\r\nb NOOP\r\n'));
    expect(framer.nextCommand()).toBeUndefined();
  });

  it('refuses an oversized literal before asking for it, synchronising or not', () => {
    expect(commands([`a LOGIN {${limits.maxLiteralBytes + 1}}\r\n`])).toEqual([
      { tooBig: 'literal', tag: 'a' },
    ]);
    expect(commands([`b LOGIN {${limits.maxLiteralBytes + 1}+}\r\nyyyy`])).toEqual([
      { tooBig: 'literal', tag: 'b' },
    ]);
    expect(commands(['c LOGIN {99999999999}\r\n'])).toEqual([{ bad: 'c' }]);
  });

  it('bounds a whole command made of many literals', () => {
    const part = `{${limits.maxLiteralBytes}+}\r\n${'z'.repeat(limits.maxLiteralBytes)}`;
    expect(commands([`a LOGIN ${part} ${part}\r\n`])).toEqual([{ tooBig: 'command', tag: 'a' }]);
  });

  it('reads a SASL response line with the same line limit', () => {
    const framer = new CommandFramer(limits);
    framer.push(Buffer.from('dXNlcg==\r\n*\r\n'));
    expect(framer.nextLine()).toEqual({ kind: 'line', line: Buffer.from('dXNlcg==') });
    expect(framer.nextLine()).toEqual({ kind: 'line', line: Buffer.from('*') });
    expect(framer.nextLine()).toBeUndefined();
    framer.push(Buffer.from('A'.repeat(limits.maxLineBytes + 2)));
    expect(framer.nextLine()?.kind).toBe('too-big');
  });

  it('hands over what was not read (STARTTLS discards it, login passes it to the store)', () => {
    const framer = new CommandFramer(limits);
    framer.push(Buffer.from('a STARTTLS\r\nb CAPABILITY\r\n'));
    expect(framer.nextCommand()?.kind).toBe('frame');
    expect(framer.takeBuffered().toString()).toBe('b CAPABILITY\r\n');
    expect(framer.nextCommand()).toBeUndefined();
    expect(framer.buffered).toBe(0);
  });
});

describe('IMAP parser robustness', () => {
  it('never throws on random bytes, in random chunks', () => {
    for (let round = 0; round < 300; round++) {
      const framer = new CommandFramer({ maxLineBytes: 256, maxLiteralBytes: 256 });
      const data = randomBytes(2000);
      // Sprinkle protocol characters so the interesting paths are reached.
      for (let i = 0; i < data.length; i += 7) data[i] = Buffer.from('{}+"\\() \r\n1*')[data[i]! % 13]!;
      for (let at = 0; at < data.length;) {
        const size = 1 + (data[at]! % 64);
        framer.push(data.subarray(at, at + size));
        at += size;
        for (let e = framer.nextCommand(); e; e = framer.nextCommand()) {
          if (e.kind === 'frame') {
            const parsed = parseCommand(e.frame);
            if (parsed.ok) decodePreauthCommand(parsed.command);
          }
        }
      }
    }
  });
});

describe('pre-authentication commands', () => {
  const decode = (line: string) => {
    const [event] = run([line]);
    if (event?.kind !== 'frame') throw new Error('no frame');
    const parsed = parseCommand(event.frame);
    if (!parsed.ok) throw new Error(parsed.text);
    return decodePreauthCommand(parsed.command);
  };

  it.each<[string, unknown]>([
    ['a CAPABILITY\r\n', { name: 'CAPABILITY' }],
    ['a STARTTLS\r\n', { name: 'STARTTLS' }],
    ['a ID NIL\r\n', { name: 'ID' }],
    ['a ID ("name" "x")\r\n', { name: 'ID' }],
    [
      'a AUTHENTICATE xoauth2\r\n',
      { name: 'AUTHENTICATE', mechanism: 'XOAUTH2', initialResponse: undefined },
    ],
    ['a AUTHENTICATE PLAIN =\r\n', { name: 'AUTHENTICATE', mechanism: 'PLAIN', initialResponse: '=' }],
    ['a LOGIN user {4+}\r\npass\r\n', { name: 'LOGIN', user: 'user', password: 'pass' }],
  ])('%j', (line, command) => {
    expect(decode(line)).toEqual({ ok: true, command });
  });

  it.each([
    'a CAPABILITY now\r\n',
    'a SELECT INBOX\r\n',
    'a ENABLE IMAP4rev2\r\n',
    'a ID\r\n',
    'a ID ("name")\r\n',
    'a ID "name"\r\n',
    'a AUTHENTICATE\r\n',
    'a AUTHENTICATE PLAIN "abc"\r\n',
    'a AUTHENTICATE PLAIN abc def\r\n',
    'a LOGIN onlyuser\r\n',
    'a LOGIN (u) p\r\n',
  ])('BAD for %j', (line) => {
    expect(decode(line)).toMatchObject({ ok: false });
  });
});
