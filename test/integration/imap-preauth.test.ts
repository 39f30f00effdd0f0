import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pkiFile } from '../helpers/gateway.js';
import { type ImapHarness, startImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { eventually } from '../helpers/mailbox.js';

/**
 * The commands the gateway answers itself, on real sockets with real TLS (dev PKI), transcripts of
 * exact responses (RFC 9051, RFC 5530 codes).
 */
let h: ImapHarness;
const ca = () => pkiFile('ca/root.crt');
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

beforeAll(async () => {
  h = await startImapHarness({ imap: { maxLineBytes: 1024, maxLiteralBytes: 2048 } });
});
afterAll(async () => {
  await h?.close();
});

const plain = () => ImapTranscript.connect(h.addresses.starttls.port);

describe('IMAP before TLS', () => {
  it('greets with its capabilities: STARTTLS, LOGINDISABLED and no mechanism', async () => {
    const { client, greeting } = await plain();
    expect(greeting).toBe(
      '* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED] MSSante operator gateway ready',
    );
    expect(await client.command('a1', 'CAPABILITY')).toEqual({
      untagged: ['* CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED'],
      tagged: 'a1 OK CAPABILITY completed',
    });
    client.destroy();
  });

  it('refuses LOGIN and AUTHENTICATE with PRIVACYREQUIRED', async () => {
    const mailbox = await h.mailbox('PER', '810000000001');
    const { client } = await plain();
    expect((await client.command('a1', `LOGIN ${mailbox} secret`)).tagged).toBe(
      'a1 NO [PRIVACYREQUIRED] Use STARTTLS or the TLS port first',
    );
    const token = await h.token('810000000001');
    const xoauth2 = b64(`user=${mailbox}\x01auth=Bearer ${token}\x01\x01`);
    expect(await client.command('a2', `AUTHENTICATE XOAUTH2 ${xoauth2}`)).toEqual({
      untagged: [],
      tagged: 'a2 NO [PRIVACYREQUIRED] Use STARTTLS or the TLS port first',
    });
    expect((await client.command('a3', 'AUTHENTICATE PLAIN')).tagged).toBe(
      'a3 NO [PRIVACYREQUIRED] Use STARTTLS or the TLS port first',
    );
    client.destroy();
    const refused = h.journal().filter((e) => e.event === 'imap.login.refused');
    expect(refused.map((e) => [e.mechanism, e.code])).toEqual(
      expect.arrayContaining([
        ['LOGIN', 'AUTH_TLS_REQUIRED'],
        ['XOAUTH2', 'AUTH_TLS_REQUIRED'],
      ]),
    );
    expect(JSON.stringify(h.journal())).not.toContain(token);
  });

  it('answers pipelined commands in order, from one packet', async () => {
    const { client } = await plain();
    client.write('p1 NOOP\r\np2 ID ("name" "evil\\"client")\r\np3 FOO\r\np4 CAPABILITY\r\np5 LOGOUT\r\n');
    expect(await client.readToEnd()).toEqual([
      'p1 OK NOOP completed',
      '* ID ("name" "mssgw")',
      'p2 OK ID completed',
      'p3 BAD Command unknown or not valid before login',
      '* CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ STARTTLS LOGINDISABLED',
      'p4 OK CAPABILITY completed',
      '* BYE Logging out',
      'p5 OK LOGOUT completed',
    ]);
  });

  it('asks for a synchronising literal with +, takes LITERAL+ without asking', async () => {
    const { client } = await plain();
    client.write('l1 ID ({4}\r\n');
    expect(await client.readLine()).toBe('+ Ready for literal data');
    client.write('name "x")\r\nl2 ID ({4+}\r\nname "y")\r\n');
    expect(await client.readLine()).toBe('* ID ("name" "mssgw")');
    expect(await client.readLine()).toBe('l1 OK ID completed');
    expect(await client.readLine()).toBe('* ID ("name" "mssgw")');
    expect(await client.readLine()).toBe('l2 OK ID completed');
    client.destroy();
  });

  it('answers garbage with BAD and stays usable', async () => {
    const { client } = await plain();
    client.write(Buffer.from([0x00, 0xff, 0xfe, 0x20, 0x41, 0x0d, 0x0a]));
    expect(await client.readLine()).toBe('* BAD Missing or invalid tag');
    client.write('g1 LOGIN "unterminated\r\n');
    expect(await client.readLine()).toBe('g1 BAD Syntax error: unexpected end of command');
    client.write(Buffer.from('g2 \x01\x02\x03\r\n', 'latin1'));
    expect(await client.readLine()).toBe('g2 BAD Syntax error: invalid command name');
    expect((await client.command('g3', 'NOOP')).tagged).toBe('g3 OK NOOP completed');
    client.destroy();
  });

  it('ends the connection on an over-long line: BAD [TOOBIG], then BYE', async () => {
    const { client } = await plain();
    client.write(`t1 LOGIN ${'x'.repeat(2000)}`);
    expect(await client.readToEnd()).toEqual([
      't1 BAD [TOOBIG] Line too long',
      '* BYE Too much data before login',
    ]);
    expect(h.observed).toContainEqual(['protocolError', 'line-too-long']);
  });

  it('takes an RFC 2971 ID at its limits (30 pairs, 30-octet fields, 1024-octet values)', async () => {
    // 30 × 1024-octet values: about 31 KB on one line, far over this harness's 1024-octet lines.
    const pairs = Array.from({ length: 30 }, (_, i) => `"${`f${i}`.padEnd(30, 'x')}" "${'v'.repeat(1024)}"`);
    const { client } = await plain();
    expect(await client.command('i1', `ID (${pairs.join(' ')})`)).toEqual({
      untagged: ['* ID ("name" "mssgw")'],
      tagged: 'i1 OK ID completed',
    });
    // Still usable afterwards; and the other commands keep their limits.
    expect((await client.command('i2', 'NOOP')).tagged).toBe('i2 OK NOOP completed');
    client.write(`i3 LOGIN ${'x'.repeat(2000)}\r\n`);
    expect(await client.readToEnd()).toEqual([
      'i3 BAD [TOOBIG] Line too long',
      '* BYE Too much data before login',
    ]);
  });

  it('refuses an ID over the RFC 2971 limits with BAD, and a longer one with TOOBIG', async () => {
    const { client } = await plain();
    const value = (n: number) => `"${'v'.repeat(n)}"`;
    expect((await client.command('j1', `ID ("name" ${value(1025)})`)).tagged).toBe(
      'j1 BAD ID value longer than 1024 octets',
    );
    expect((await client.command('j2', `ID ("${'f'.repeat(31)}" "x")`)).tagged).toBe(
      'j2 BAD ID field longer than 30 octets',
    );
    const pairs31 = Array.from({ length: 31 }, (_, i) => `"f${i}" "v"`).join(' ');
    expect((await client.command('j3', `ID (${pairs31})`)).tagged).toBe(
      'j3 BAD ID expects field-value pairs',
    );
    client.write(`j4 ID ("name" ${value(100_000)})\r\n`);
    expect(await client.readToEnd()).toEqual([
      'j4 BAD [TOOBIG] Line too long',
      '* BYE Too much data before login',
    ]);
  });

  it('ends the connection on a literal over the limit, without asking for it', async () => {
    const { client } = await plain();
    client.write('t2 LOGIN {100000}\r\n');
    expect(await client.readToEnd()).toEqual([
      't2 BAD [TOOBIG] Literal too long',
      '* BYE Too much data before login',
    ]);
    const second = await plain();
    second.client.write(`t3 LOGIN {100000+}\r\n${'y'.repeat(5000)}`);
    const lines = await second.client.readToEnd();
    expect(lines[0]).toBe('t3 BAD [TOOBIG] Literal too long');
  });
});

describe('IMAP robustness', () => {
  it('lets a client go after ten invalid commands', async () => {
    const { client } = await plain();
    client.write('b SELECT INBOX\r\n'.repeat(12));
    const lines = await client.readToEnd();
    expect(lines).toHaveLength(11);
    expect(lines.slice(0, 10).every((l) => l === 'b BAD Command unknown or not valid before login')).toBe(
      true,
    );
    expect(lines[10]).toBe('* BYE Too many invalid commands');
  });

  it('survives random bytes on many connections, and still serves', async () => {
    await Promise.all(
      Array.from({ length: 20 }, async (_, i) => {
        const { client } = await plain();
        const junk = randomBytes(4096 + i * 97);
        // A few line ends and literal markers, so that the framer's paths are reached.
        for (let j = 0; j < junk.length; j += 61) junk[j] = Buffer.from('\n{9}+"\r(')[junk[j]! % 9]!;
        client.write(junk);
        client.socket.end();
        await client.readToEnd().catch(() => undefined);
        client.destroy();
      }),
    );
    const { client } = await plain();
    expect((await client.command('ok', 'NOOP')).tagged).toBe('ok OK NOOP completed');
    client.destroy();
  });
});

describe('STARTTLS (RFC 9051 §6.2.1)', () => {
  it('upgrades, then offers the mechanisms and no longer STARTTLS', async () => {
    const { client } = await plain();
    await client.startTls({ ca: ca() });
    expect((await client.command('c1', 'CAPABILITY')).untagged).toEqual([
      '* CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ LOGINDISABLED AUTH=XOAUTH2 AUTH=OAUTHBEARER',
    ]);
    expect((await client.command('c2', 'STARTTLS')).tagged).toBe('c2 BAD TLS is already active');
    client.destroy();
  });

  it('discards plaintext sent after the command (no command injection, CVE-2011-0411 class)', async () => {
    const { client } = await plain();
    await client.startTls({ ca: ca() }, 'i1 CAPABILITY\r\ni2 LOGOUT\r\n');
    expect((await client.command('c3', 'NOOP')).tagged).toBe('c3 OK NOOP completed');
    expect(client.pending()).toEqual([]);
    expect(client.closed).toBe(false);
    client.destroy();
  });

  it('closes after a failed handshake', async () => {
    const { client } = await plain();
    client.write('s1 STARTTLS\r\n');
    expect(await client.readLine()).toBe('s1 OK Begin TLS negotiation now');
    client.write('this is not a ClientHello\r\n\r\n');
    await client.readToEnd();
    expect(h.observed.some(([m, , outcome]) => m === 'tlsHandshake' && outcome === 'failed')).toBe(true);
  });
});

describe('implicit TLS (RFC 8314)', () => {
  it('greets over TLS with the mechanisms; EXTERNAL only with a verified certificate', async () => {
    const { client, greeting } = await ImapTranscript.connect(h.addresses.implicit.port, {
      tls: { ca: ca() },
    });
    expect(greeting).toBe(
      '* OK [CAPABILITY IMAP4rev1 SASL-IR ID LITERAL+ LOGINDISABLED AUTH=XOAUTH2 AUTH=OAUTHBEARER] MSSante operator gateway ready',
    );
    client.destroy();
    const withCert = await ImapTranscript.connect(h.addresses.implicit.port, {
      tls: { ca: ca(), key: pkiFile('app-lab.key'), cert: pkiFile('app-lab.chain.pem') },
    });
    expect(withCert.greeting).toContain('AUTH=EXTERNAL');
    withCert.client.destroy();
    const revoked = await ImapTranscript.connect(h.addresses.implicit.port, {
      tls: { ca: ca(), key: pkiFile('peer-revoked.key'), cert: pkiFile('peer-revoked.chain.pem') },
    });
    expect(revoked.greeting).not.toContain('AUTH=EXTERNAL');
    revoked.client.destroy();
  });

  it('serves new connections with reloaded trust material', async () => {
    h.frontEnd.reloadTrust();
    const { client, greeting } = await ImapTranscript.connect(h.addresses.implicit.port, {
      tls: { ca: ca() },
    });
    expect(greeting).toMatch(/^\* OK /);
    client.destroy();
    const plainClient = await plain();
    await plainClient.client.startTls({ ca: ca() });
    expect((await plainClient.client.command('r1', 'NOOP')).tagged).toBe('r1 OK NOOP completed');
    plainClient.client.destroy();
  });

  it('refuses LOGIN when the authenticator offers no password mechanism', async () => {
    const { client } = await ImapTranscript.connect(h.addresses.implicit.port, { tls: { ca: ca() } });
    expect((await client.command('l1', 'LOGIN someone@op.mssante.test secret')).tagged).toBe(
      'l1 NO [CANNOT] This authentication mechanism is not allowed here',
    );
    expect((await client.command('l2', 'AUTHENTICATE CRAM-MD5')).tagged).toBe(
      'l2 NO [CANNOT] This authentication mechanism is not allowed here',
    );
    client.destroy();
  });

  it('cancels an exchange on * with BAD (RFC 9051 §6.2.2)', async () => {
    const { client } = await ImapTranscript.connect(h.addresses.implicit.port, { tls: { ca: ca() } });
    client.write('x1 AUTHENTICATE XOAUTH2\r\n');
    expect(await client.readLine()).toBe('+ ');
    client.write('*\r\n');
    expect(await client.readLine()).toBe('x1 BAD Authentication cancelled');
    client.write('x2 AUTHENTICATE XOAUTH2 not-base64!\r\n');
    expect(await client.readLine()).toBe('x2 BAD Malformed SASL response');
    expect((await client.command('x3', 'NOOP')).tagged).toBe('x3 OK NOOP completed');
    client.destroy();
  });
});

describe('IMAP connection limits', () => {
  it('says BYE to a client that does not log in within preauthTimeoutSeconds', async () => {
    const quick = await startImapHarness({ imap: { preauthTimeoutSeconds: 1 } });
    try {
      const { client } = await ImapTranscript.connect(quick.addresses.starttls.port);
      expect((await client.command('n1', 'NOOP')).tagged).toBe('n1 OK NOOP completed');
      expect(await client.readToEnd(5_000)).toEqual(['* BYE Autologout; no login in time']);
      expect(quick.observed).toContainEqual(['protocolError', 'preauth-timeout']);
    } finally {
      await quick.close();
    }
  });

  it('refuses connections over maxConnections with BYE [UNAVAILABLE], on both ports', async () => {
    const small = await startImapHarness({ imap: { maxConnections: 2 } });
    try {
      const first = await ImapTranscript.connect(small.addresses.starttls.port);
      const second = await ImapTranscript.connect(small.addresses.implicit.port, { tls: { ca: ca() } });
      const third = await ImapTranscript.connect(small.addresses.starttls.port);
      expect(third.greeting).toBe('* BYE [UNAVAILABLE] Too many connections, try again later');
      await third.client.readToEnd();
      expect(small.observed).toContainEqual(['connectionRefused', 'starttls', 'max-connections']);
      // On the implicit port the refusal is said after a handshake from a small budget (a flood
      // beyond it is just closed: tls-refusal.test.ts).
      const fourth = await ImapTranscript.connect(small.addresses.implicit.port, { tls: { ca: ca() } });
      expect(fourth.greeting).toBe('* BYE [UNAVAILABLE] Too many connections, try again later');
      await fourth.client.readToEnd();
      expect(small.observed).toContainEqual(['connectionRefused', 'implicit', 'max-connections']);
      first.client.destroy();
      await eventually(
        () => Promise.resolve(small.observed.filter(([m]) => m === 'connectionClosed').length),
        (n) => n >= 1,
      );
      const again = await ImapTranscript.connect(small.addresses.implicit.port, { tls: { ca: ca() } });
      expect(again.greeting).toMatch(/^\* OK /);
      again.client.destroy();
      second.client.destroy();
    } finally {
      await small.close();
    }
  });

  it('names the setting when a port cannot be bound', async () => {
    await expect(startImapHarness({ imap: { tlsPort: h.addresses.implicit.port } })).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
      details: { key: 'imap.tlsPort' },
      message: expect.stringContaining('EADDRINUSE') as unknown,
    });
  });

  it('ends the connection on an over-long SASL response line', async () => {
    const { client } = await ImapTranscript.connect(h.addresses.implicit.port, { tls: { ca: ca() } });
    client.write('z1 AUTHENTICATE XOAUTH2\r\n');
    expect(await client.readLine()).toBe('+ ');
    client.write('A'.repeat(5000));
    expect(await client.readToEnd()).toEqual([
      '* BAD [TOOBIG] Line too long',
      '* BYE Too much data before login',
    ]);
  });
});
