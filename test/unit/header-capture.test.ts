import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { HeaderCapture } from '../../src/smtp/header-scan.js';

/**
 * The chunks through a capture; what it passes on is lists of the buffers it received, or one Buffer
 * joining a batch of tiny ones (`joined` counts those).
 */
async function through(
  chunks: readonly Buffer[],
): Promise<{ capture: HeaderCapture; out: Buffer[]; joined: number }> {
  const capture = new HeaderCapture();
  const out: Buffer[] = [];
  const received = new Set(chunks);
  let joined = 0;
  capture.on('data', (batch: Buffer[]) => {
    if (batch.length === 1 && !received.has(batch[0]!)) joined += 1;
    else for (const b of batch) expect(received.has(b)).toBe(true); // the buffers received, not copies
    out.push(Buffer.concat(batch));
  });
  const ended = new Promise((resolve) => capture.on('end', resolve));
  Readable.from(chunks).pipe(capture);
  await ended;
  return { capture, out, joined };
}

describe('the header capture of an incoming message', () => {
  it('passes the bytes on unchanged, a small message as one piece', async () => {
    const message = Buffer.from('Subject: a\r\nMessage-ID: <m@x>\r\n\r\nbody\r\n');
    const chunks = Array.from({ length: message.length }, (_, i) => message.subarray(i, i + 1));
    const { capture, out } = await through(chunks);
    expect(out).toHaveLength(1);
    expect(Buffer.concat(out).equals(message)).toBe(true);
    expect(capture.header('message-id')).toBe('<m@x>');
  });

  it('joins a batch of tiny records into one Buffer (memory the spool counts), keeps ordinary ones', async () => {
    const message = Buffer.from(`Subject: a\r\n\r\n${'x'.repeat(4000)}\r\n`);
    const tiny = Array.from({ length: message.length }, (_, i) => message.subarray(i, i + 1));
    const small = await through(tiny);
    expect(small.joined).toBe(1);
    expect(Buffer.concat(small.out).equals(message)).toBe(true);
    const records = Array.from({ length: 8 }, (_, i) => Buffer.alloc(16 * 1024, 65 + i));
    const large = await through([Buffer.from('Subject: b\r\n\r\n'), ...records]);
    expect(large.joined).toBe(0);
  });

  it('finds the blank line across chunk boundaries and never reads the body as headers', async () => {
    const head = 'From: a@b.test\r\nX-MSS-NIL: BENCH\r\n\r\n';
    const message = Buffer.from(`${head}X-Not-A-Header: body\r\n`);
    for (let cut = 1; cut < message.length; cut++) {
      const { capture } = await through([message.subarray(0, cut), message.subarray(cut)]);
      expect(capture.header('X-MSS-NIL')).toBe('BENCH');
      expect(capture.header('X-Not-A-Header')).toBeUndefined();
    }
  });

  it('finds the blank line when it arrives one byte at a time', async () => {
    const message = Buffer.from('Subject: a\r\nX-MSS-NIL: ONE\r\n\r\nX-MSS-NIL: body\r\n');
    const { capture } = await through(Array.from(message, (_, i) => message.subarray(i, i + 1)));
    expect(capture.header('X-MSS-NIL')).toBe('ONE');
    expect(capture.headers().value('Subject')).toBe('a');
  });

  it('passes a large message on in pieces of at most 64 KiB plus one chunk', async () => {
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    const chunks = [Buffer.from('Subject: big\r\n\r\n'), ...Array.from({ length: 20 }, () => chunk)];
    const { out } = await through(chunks);
    expect(Buffer.concat(out).equals(Buffer.concat(chunks))).toBe(true);
    expect(out.length).toBeGreaterThan(4);
    expect(Math.max(...out.map((b) => b.length))).toBeLessThanOrEqual(64 * 1024 + 16 * 1024);
  });
});
