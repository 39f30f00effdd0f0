import { readdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { PEER_DOMAIN, identity, pkiFile, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Issue #11 items 2 and 3 on real sockets: every connection that is closed or aborted, whatever its
 * state, gives back its descriptors at once (counted in /proc/self/fd: the gateway runs in this
 * process), and no listener honours a TLS renegotiation.
 */
const system = { kind: 'system' as const, id: 'test' };
const SESSIONS = 150;
let gw: Gateway;
let bal: string;

const fds = () => readdirSync('/proc/self/fd').length;
const ca = () => pkiFile('ca/root.crt');

/** Waits for the fd count to come back to the baseline (±10), and returns it. */
async function settledFds(baseline: number): Promise<number> {
  return eventually(
    () => Promise.resolve(fds()),
    (n) => n <= baseline + 10,
    20_000,
  );
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
    socket.on('error', reject);
  });
}

/** Resolves once the server has closed the socket (or it closed for any reason). */
function closed(socket: net.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve();
    socket.on('error', () => {});
    socket.once('close', () => resolve());
    socket.resume();
  });
}

/** Runs `n` sessions, a few at a time. */
async function many(n: number, session: () => Promise<void>): Promise<void> {
  const parallel = 10;
  for (let i = 0; i < n; i += parallel) {
    await Promise.all(Array.from({ length: Math.min(parallel, n - i) }, session));
  }
}

/** A TLS client that stops after the first bytes of its ClientHello. */
async function halfHandshake(port: number, startTls?: 'smtp' | 'imap'): Promise<void> {
  const socket = await connect(port);
  if (startTls === 'smtp') {
    socket.write('EHLO x\r\nSTARTTLS\r\n');
  } else if (startTls === 'imap') {
    socket.write('a STARTTLS\r\n');
  }
  // A TLS record header announcing a handshake of 512 bytes, and only part of it.
  socket.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]));
  socket.end();
  await closed(socket);
}

async function bareConnect(port: number, reset: boolean): Promise<void> {
  const socket = await connect(port);
  if (reset) socket.resetAndDestroy();
  else socket.end();
  await closed(socket);
}

beforeAll(async () => {
  gw = await startTestGateway();
  bal = uniqueBal('leak');
  await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
});
afterAll(async () => {
  await gw?.stop();
});

describe('connections give back their descriptors at once', () => {
  const listeners = () => ({
    mx: gw.addresses.mx!.port,
    submission: gw.addresses.submission!.port,
    submissionTls: gw.addresses.submissionTls!.port,
    imap: gw.addresses.imap!.port,
    imapTls: gw.addresses.imapTls!.port,
  });

  it.each(['mx', 'submission', 'submissionTls', 'imap', 'imapTls'] as const)(
    '%s: connect-and-close, reset, and a handshake cut short',
    async (name) => {
      const port = listeners()[name];
      await bareConnect(port, false); // warm-up
      const baseline = await settledFds(fds());
      const startTls = name === 'mx' || name === 'submission' ? 'smtp' : name === 'imap' ? 'imap' : undefined;
      await many(SESSIONS, () => bareConnect(port, false));
      await many(SESSIONS, () => bareConnect(port, true));
      await many(SESSIONS, () => halfHandshake(port, startTls));
      const after = await settledFds(baseline);
      console.error(`fds ${name}: baseline ${baseline}, after ${3 * SESSIONS} aborted sessions ${after}`);
      expect(after).toBeLessThanOrEqual(baseline + 10);
    },
  );

  it('MX: a peer that drops the connection mid-DATA leaves no descriptor and no spool file', async () => {
    const port = gw.addresses.mx!.port;
    const tmp = path.join(gw.config.dataDir, 'spool', 'tmp');
    const baseline = await settledFds(fds());
    await many(40, async () => {
      const { client } = await SmtpTranscript.connect(port);
      await client.command('EHLO mx.peer.mssante.test');
      await client.startTls({ ...identity('peer-trusted'), ca: ca() });
      await client.command('EHLO mx.peer.mssante.test');
      expect((await client.command(`MAIL FROM:<martin@${PEER_DOMAIN}>`)).code).toBe(250);
      expect((await client.command(`RCPT TO:<${bal}>`)).code).toBe(250);
      expect((await client.command('DATA')).code).toBe(354);
      client.write(`Subject: cut\r\n\r\n${'x'.repeat(20_000)}\r\n`);
      client.destroy();
    });
    const after = await settledFds(baseline);
    console.error(`fds mx mid-DATA: baseline ${baseline}, after 40 aborted transactions ${after}`);
    expect(after).toBeLessThanOrEqual(baseline + 10);
    const left = await eventually(
      () => Promise.resolve(readdirSync(tmp)),
      (files) => files.length === 0,
    );
    expect(left).toEqual([]);
  });

  it('submission: a client that drops the connection mid-DATA leaves no descriptor and no spool file', async () => {
    const port = gw.addresses.submissionTls!.port;
    const tmp = path.join(gw.config.dataDir, 'spool', 'tmp');
    const token = await mintDevToken({ pkiDir: gw.config.pkiDir, subject: '810000000001', ttlSeconds: 600 });
    const auth = Buffer.from(`user=${bal}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    const baseline = await settledFds(fds());
    await many(40, async () => {
      const socket = tls.connect({ port, host: '127.0.0.1', ca: ca() });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      const lines: string[] = [];
      let buffer = '';
      const waiters: Array<() => void> = [];
      socket.on('data', (chunk: Buffer) => {
        buffer += chunk.toString('latin1');
        let i: number;
        while ((i = buffer.indexOf('\r\n')) >= 0) {
          const line = buffer.slice(0, i);
          buffer = buffer.slice(i + 2);
          if (/^\d{3} /.test(line)) {
            lines.push(line);
            waiters.shift()?.();
          }
        }
      });
      const reply = async (command?: string) => {
        const seen = lines.length;
        const next = new Promise<void>((resolve) => waiters.push(resolve));
        if (command) socket.write(`${command}\r\n`);
        if (lines.length === seen) await next;
        return lines[seen]!;
      };
      expect(await reply()).toMatch(/^220 /);
      expect(await reply('EHLO client')).toMatch(/^250 /);
      expect(await reply(`AUTH XOAUTH2 ${auth}`)).toMatch(/^235 /);
      expect(await reply(`MAIL FROM:<${bal}>`)).toMatch(/^250 /);
      expect(await reply(`RCPT TO:<${bal}>`)).toMatch(/^250 /);
      expect(await reply('DATA')).toMatch(/^354 /);
      socket.write(`From: <${bal}>\r\nSubject: cut\r\n\r\n${'y'.repeat(20_000)}\r\n`);
      socket.destroy();
    });
    const after = await settledFds(baseline);
    console.error(`fds submission mid-DATA: baseline ${baseline}, after 40 aborted transactions ${after}`);
    expect(after).toBeLessThanOrEqual(baseline + 10);
    expect(
      await eventually(
        () => Promise.resolve(readdirSync(tmp)),
        (files) => files.length === 0,
      ),
    ).toEqual([]);
  });

  it('IMAP: clients that drop mid-literal leave no descriptor', async () => {
    const port = gw.addresses.imapTls!.port;
    const baseline = await settledFds(fds());
    await many(SESSIONS, async () => {
      const socket = tls.connect({ port, host: '127.0.0.1', ca: ca() });
      await new Promise<void>((resolve, reject) => {
        socket.once('secureConnect', resolve);
        socket.once('error', reject);
      });
      socket.write('a LOGIN {100+}\r\nonly part of the literal');
      socket.destroy();
    });
    const after = await settledFds(baseline);
    console.error(`fds imap mid-literal: baseline ${baseline}, after ${SESSIONS} aborted sessions ${after}`);
    expect(after).toBeLessThanOrEqual(baseline + 10);
  });
});

describe('TLS renegotiation is refused', () => {
  /** A TLS 1.2 session (TLS 1.3 has no renegotiation) that asks to renegotiate. */
  async function renegotiate(socket: tls.TLSSocket): Promise<Error | undefined> {
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    expect(socket.getProtocol()).toBe('TLSv1.2');
    return new Promise((resolve) => {
      socket.once('error', (err: Error) => resolve(err));
      const started = socket.renegotiate({ rejectUnauthorized: false }, (err: Error | null) =>
        resolve(err ?? undefined),
      );
      if (!started) resolve(new Error('renegotiation not started'));
    });
  }
  const client = { ca: ca(), servername: 'localhost', maxVersion: 'TLSv1.2' as const };

  it.each(['submissionTls', 'imapTls'] as const)('%s (implicit TLS)', async (name) => {
    const port = name === 'submissionTls' ? gw.addresses.submissionTls!.port : gw.addresses.imapTls!.port;
    const socket = tls.connect({ port, host: '127.0.0.1', ...client });
    const err = await renegotiate(socket);
    expect(err?.message).toMatch(/no renegotiation|alert|handshake failure/i);
    socket.destroy();
  });

  it.each(['mx', 'submission'] as const)('%s (after STARTTLS)', async (name) => {
    const port = name === 'mx' ? gw.addresses.mx!.port : gw.addresses.submission!.port;
    const { client: smtp } = await SmtpTranscript.connect(port);
    await smtp.command('EHLO client.test');
    const { socket } = await smtp.startTls({ ...identity('peer-trusted'), ...client });
    expect(socket.getProtocol()).toBe('TLSv1.2');
    const err = await new Promise<Error | undefined>((resolve) => {
      socket.once('error', (e: Error) => resolve(e));
      socket.renegotiate({ rejectUnauthorized: false }, (e: Error | null) => resolve(e ?? undefined));
    });
    expect(err?.message).toMatch(/no renegotiation|alert|handshake failure/i);
    socket.destroy();
  });

  it('imap (after STARTTLS)', async () => {
    const plain = await connect(gw.addresses.imap!.port);
    const lines: string[] = [];
    await new Promise<void>((resolve) => {
      plain.on('data', (chunk: Buffer) => {
        lines.push(...chunk.toString('latin1').split('\r\n').filter(Boolean));
        if (lines.some((l) => l.startsWith('a OK'))) resolve();
        else if (lines.length === 1) plain.write('a STARTTLS\r\n');
      });
    });
    plain.removeAllListeners('data');
    const socket = tls.connect({ socket: plain, ...client });
    const err = await renegotiate(socket);
    expect(err?.message).toMatch(/no renegotiation|alert|handshake failure/i);
    socket.destroy();
  });
});
