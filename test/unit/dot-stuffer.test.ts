import { describe, expect, it } from 'vitest';
import { DotStuffer } from '../../src/shared/index.js';

/**
 * The conversion as RFC 5321 states it, one byte at a time (§4.5.2 stuffing, §2.3.8 bare CR and LF
 * sent as CRLF): the model the stuffer's CRLF fast path must match, whatever the chunking.
 */
function model(message: Buffer): Buffer {
  const out: number[] = [];
  let atLineStart = true;
  for (let i = 0; i < message.length; i++) {
    const byte = message[i]!;
    if (byte === 0x0d || byte === 0x0a) {
      out.push(0x0d, 0x0a);
      atLineStart = true;
      if (byte === 0x0d && message[i + 1] === 0x0a) i += 1;
      continue;
    }
    if (atLineStart && byte === 0x2e) out.push(0x2e);
    out.push(byte);
    atLineStart = false;
  }
  if (!atLineStart) out.push(0x0d, 0x0a);
  out.push(0x2e, 0x0d, 0x0a);
  return Buffer.from(out);
}

function stuffed(message: Buffer, cuts: readonly number[]): Buffer {
  const stuffer = new DotStuffer();
  const parts: Buffer[] = [];
  let from = 0;
  for (const cut of [...cuts, message.length]) {
    parts.push(stuffer.encode(message.subarray(from, cut)));
    from = cut;
  }
  parts.push(stuffer.end());
  return Buffer.concat(parts);
}

/** Deterministic pseudo-random numbers (mulberry32), so that a failure can be replayed. */
function random(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('the DATA encoder (DotStuffer)', () => {
  it('sends a CRLF message unchanged apart from the dots it doubles', () => {
    const message = Buffer.from('Subject: x\r\n\r\n.leading dot\r\n..two\r\nmiddle . dot\r\n.\r\nend\r\n');
    expect(stuffed(message, []).toString('latin1')).toBe(
      'Subject: x\r\n\r\n..leading dot\r\n...two\r\nmiddle . dot\r\n..\r\nend\r\n.\r\n',
    );
  });

  it('turns bare CR and bare LF into CRLF, a chunk boundary inside CRLF included', () => {
    const message = Buffer.from('a\rb\nc\r\n.d\n\r.e\r');
    const expected = 'a\r\nb\r\nc\r\n..d\r\n\r\n..e\r\n.\r\n';
    for (let cut = 0; cut <= message.length; cut++)
      expect(stuffed(message, [cut]).toString('latin1')).toBe(expected);
  });

  it('matches the byte-by-byte model on random messages cut at random places', () => {
    const next = random(12);
    // Bytes below CR (tab, form feed) too: the fast path passes over anything above CR at once.
    const alphabet = [0x0d, 0x0a, 0x2e, 0x41, 0x20, 0x09, 0x0c];
    for (let round = 0; round < 2000; round++) {
      // Mostly well-formed CRLF lines (the fast path), sometimes a bare CR or LF (the conversion).
      const bytes: number[] = [];
      const length = Math.floor(next() * 60);
      while (bytes.length < length) {
        const r = next();
        if (r < 0.3) bytes.push(0x0d, 0x0a);
        else bytes.push(alphabet[Math.floor(next() * (r < 0.4 ? 7 : 5)) + (r < 0.4 ? 0 : 2)]!);
      }
      const message = Buffer.from(bytes);
      const cuts = Array.from({ length: Math.floor(next() * 4) }, () => Math.floor(next() * (length + 1)));
      cuts.sort((a, b) => a - b);
      expect(stuffed(message, cuts).toString('latin1'), JSON.stringify({ round, bytes, cuts })).toBe(
        model(message).toString('latin1'),
      );
    }
  });

  it('doubles a dot at the start of a chunk, wherever the line before ended', () => {
    const message = Buffer.from('a\tb\r\n.\x0c\r\n..x\r\n\r\n.\r\ny.\r\n');
    const expected = 'a\tb\r\n..\x0c\r\n...x\r\n\r\n..\r\ny.\r\n.\r\n';
    for (let cut = 0; cut <= message.length; cut++)
      for (let second = cut; second <= message.length; second++)
        expect(stuffed(message, [cut, second]).toString('latin1'), `${cut},${second}`).toBe(expected);
  });

  it('keeps a pending CR across an empty chunk', () => {
    const stuffer = new DotStuffer();
    const parts = [stuffer.encode(Buffer.from('a\r')), stuffer.encode(Buffer.alloc(0))];
    parts.push(stuffer.encode(Buffer.from('\n.b')), stuffer.end());
    expect(Buffer.concat(parts).toString('latin1')).toBe('a\r\n..b\r\n.\r\n');
  });
});
