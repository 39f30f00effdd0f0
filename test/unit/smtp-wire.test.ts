import net from 'node:net';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { DotStuffer, ReplyReader, type WireFailureKind } from '../../src/shared/index.js';

/** A loopback server that writes `script` to each client, and the client socket connected to it. */
async function connected(script: string[]): Promise<{ socket: net.Socket; close: () => Promise<void> }> {
  const server = net.createServer((s) => {
    s.on('error', () => undefined);
    for (const part of script) s.write(part);
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  return {
    socket,
    close: async () => {
      socket.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const failures = (): { kinds: WireFailureKind[]; make: (k: WireFailureKind, d: string) => Error } => {
  const kinds: WireFailureKind[] = [];
  return { kinds, make: (k, d) => (kinds.push(k), new Error(`${k}: ${d}`)) };
};

describe('the shared SMTP/LMTP reply reader', () => {
  it('reads multi-line, enhanced and pipelined replies in order, whatever the chunking', async () => {
    const { socket, close } = await connected([
      '220 mx ready\r\n250-mx\r\n250-PIPE',
      'LINING\r\n250 8BITMIME\r\n250 2.1.0 Ok\r\n550 5.1.1 <a@x> unknown\r\n',
      '451 4.3.0 try later\r\n250\r\n',
    ]);
    try {
      const f = failures();
      const reader = new ReplyReader(socket, f.make);
      expect(await reader.next()).toMatchObject({ code: 220, text: 'mx ready' });
      expect(await reader.next()).toMatchObject({ code: 250, lines: ['mx', 'PIPELINING', '8BITMIME'] });
      expect(await reader.next()).toMatchObject({ code: 250, enhancedCode: '2.1.0', text: 'Ok' });
      expect(await reader.next()).toMatchObject({
        code: 550,
        enhancedCode: '5.1.1',
        text: '<a@x> unknown',
        raw: '550 5.1.1 <a@x> unknown',
      });
      expect(await reader.next()).toMatchObject({ code: 451, enhancedCode: '4.3.0' });
      // A bare code is a reply (RFC 5321 §4.2: the text is optional).
      expect(await reader.next()).toMatchObject({ code: 250, text: '' });
      expect(f.kinds).toEqual([]);
    } finally {
      await close();
    }
  });

  it('keeps an enhanced code only when its class is the reply’s own', async () => {
    const { socket, close } = await connected(['250 5.0.0 odd\r\n']);
    try {
      const reply = await new ReplyReader(socket, failures().make).next();
      expect(reply.enhancedCode).toBeUndefined();
      expect(reply.text).toBe('5.0.0 odd');
    } finally {
      await close();
    }
  });

  it('fails a pending read with the caller’s error when the line is no reply, and every later read', async () => {
    const { socket, close } = await connected(['220 ok\r\nHTTP/1.1 400 Bad Request\r\n']);
    try {
      const f = failures();
      const reader = new ReplyReader(socket, f.make);
      expect(await reader.next()).toMatchObject({ code: 220 });
      await expect(reader.next()).rejects.toThrow('protocol: HTTP/1.1 400 Bad Request');
      await expect(reader.next()).rejects.toThrow('protocol');
      expect(f.kinds[0]).toBe('protocol');
    } finally {
      await close();
    }
  });

  it('reads nothing after a line that is no reply: a later reply never goes to the wrong recipient', async () => {
    // LMTP's per-recipient replies after the final dot, all in one chunk, the second one garbled.
    const { socket, close } = await connected([
      '250 2.0.0 <a> saved\r\ngarbage\r\n550 5.1.1 <c> unknown\r\n',
    ]);
    try {
      const f = failures();
      const reader = new ReplyReader(socket, f.make);
      expect(await reader.next()).toMatchObject({ code: 250 });
      // Recipient b's reply is the garbled line: b and every later recipient get the failure.
      await expect(reader.next()).rejects.toThrow('protocol: garbage');
      await expect(reader.next()).rejects.toThrow('protocol: garbage');
    } finally {
      await close();
    }
  });

  it('fails, and stops buffering, when a peer floods a multi-line reply', async () => {
    const flood = '250-x\r\n'.repeat(5_000);
    const { socket, close } = await connected(['220-hello\r\n', flood]);
    try {
      const f = failures();
      const reader = new ReplyReader(socket, f.make);
      await expect(reader.next()).rejects.toThrow('protocol: too many reply lines');
      expect(reader.unsolicited).toBe(false);
    } finally {
      await close();
    }
  });

  it('gives the queued replies before the failure of a connection the server closed', async () => {
    const server = net.createServer((s) => s.end('250 2.0.0 saved\r\n'));
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const socket = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
    try {
      const f = failures();
      const reader = new ReplyReader(socket, f.make);
      await once(socket, 'close');
      expect(await reader.next()).toMatchObject({ code: 250 });
      await expect(reader.next()).rejects.toThrow('closed');
    } finally {
      socket.destroy();
      server.close();
    }
  });

  it('says a connection that was refused is a connect failure', async () => {
    const server = net.createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as net.AddressInfo;
    server.close();
    await once(server, 'close');
    const socket = net.connect(port, '127.0.0.1');
    const f = failures();
    const reader = new ReplyReader(socket, f.make);
    await expect(reader.next()).rejects.toThrow(/^connect: ECONNREFUSED/);
  });

  it('tells on detach whether bytes arrived after the last reply (STARTTLS injection)', async () => {
    const { socket, close } = await connected(['220 go ahead\r\n250 injected\r\n']);
    try {
      const reader = new ReplyReader(socket, failures().make);
      expect(await reader.next()).toMatchObject({ code: 220 });
      while (!reader.unsolicited) await new Promise((resolve) => setImmediate(resolve));
      expect(reader.detach()).toEqual({ unread: true });
    } finally {
      await close();
    }
  });
});

/**
 * RFC 5321 §4.5.2 and §2.3.8 spelled out over the whole message at once, byte by byte: what the
 * streaming encoder must produce however the message is cut into chunks.
 */
function referenceStuffing(message: Buffer): Buffer {
  const lines: Buffer[] = [];
  let start = 0;
  for (let i = 0; i < message.length; i += 1) {
    const b = message[i]!;
    if (b !== 0x0d && b !== 0x0a) continue;
    lines.push(message.subarray(start, i));
    if (b === 0x0d && message[i + 1] === 0x0a) i += 1;
    start = i + 1;
  }
  if (start < message.length) lines.push(message.subarray(start));
  const out = lines.map((l) =>
    Buffer.concat([l[0] === 0x2e ? Buffer.from('.') : Buffer.alloc(0), l, Buffer.from('\r\n')]),
  );
  return Buffer.concat([...out, Buffer.from('.\r\n')]);
}

describe('the shared DATA encoder', () => {
  it('stuffs like the byte-by-byte rule, for random messages of CR, LF, dots and text cut anywhere', () => {
    // A fixed pseudo-random sequence (xorshift): the same cases every run.
    let seed = 0x2545f491;
    const random = (n: number) => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) % n;
    };
    const alphabet = [0x0d, 0x0a, 0x2e, 0x61, 0x62, 0x20];
    for (let round = 0; round < 2000; round += 1) {
      const message = Buffer.from(
        Array.from({ length: random(60) }, () => alphabet[random(alphabet.length)]!),
      );
      const stuffer = new DotStuffer();
      const parts: Buffer[] = [];
      for (let at = 0; at < message.length;) {
        const size = 1 + random(12);
        parts.push(stuffer.encode(message.subarray(at, at + size)));
        at += size;
      }
      parts.push(stuffer.end());
      expect(Buffer.concat(parts).toString('latin1'), JSON.stringify(message.toString('latin1'))).toBe(
        referenceStuffing(message).toString('latin1'),
      );
    }
  });

  it('passes a CRLF message of many lines through with only its leading dots doubled', () => {
    const lines = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? `.line ${i}` : `line ${i} é`));
    const message = Buffer.from(`${lines.join('\r\n')}\r\n`);
    const stuffer = new DotStuffer();
    const out = Buffer.concat([stuffer.encode(message), stuffer.end()]).toString();
    expect(out).toBe(`${lines.map((l) => (l.startsWith('.') ? `.${l}` : l)).join('\r\n')}\r\n.\r\n`);
  });
});
