import { readdirSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { identity, PEER_DOMAIN, pkiFile, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { inboxMessages } from '../helpers/mailbox.js';
import { journalEvents } from '../helpers/journal.js';
import { SmtpTranscript, type Reply } from '../helpers/smtp-transcript.js';

let gw: Gateway;
let bal: string;
const ca = () => pkiFile('ca/root.crt');

beforeAll(async () => {
  gw = await startTestGateway();
  bal = uniqueBal('trust');
  await gw.registry.create(
    { address: bal, type: 'PER', owner: '810000000001' },
    { kind: 'system', id: 'test' },
  );
});
afterAll(async () => {
  await gw?.stop();
});

function spoolEntries(): string[] {
  const q = path.join(gw.config.dataDir, 'spool', 'queue');
  return readdirSync(q);
}

/** EHLO, STARTTLS with `who`'s certificate (or none), EHLO, then MAIL FROM. */
async function mailAs(who: string | undefined, from = `sender@${PEER_DOMAIN}`) {
  const { client, greeting } = await SmtpTranscript.connect(gw.addresses.mx!.port);
  expect(greeting.code).toBe(220);
  expect((await client.command('EHLO mx.peer.mssante.test')).code).toBe(250);
  await client.startTls({ ca: ca(), ...(who ? identity(who) : {}) });
  expect((await client.command('EHLO mx.peer.mssante.test')).code).toBe(250);
  const mail = await client.command(`MAIL FROM:<${from}>`);
  return { client, mail };
}

describe('MX trust: who may hand us mail', () => {
  it('refuses MAIL before STARTTLS with 530 5.7.0', async () => {
    const { client } = await SmtpTranscript.connect(gw.addresses.mx!.port);
    const ehlo = await client.command('EHLO mx.peer.mssante.test');
    expect(ehlo.lines).toContain('STARTTLS');
    expect(ehlo.lines.some((l) => l.startsWith('SIZE '))).toBe(true);
    const mail = await client.command(`MAIL FROM:<sender@${PEER_DOMAIN}>`);
    expect(mail.raw).toBe('530 5.7.0 Must issue a STARTTLS command first');
    const rcpt = await client.command(`RCPT TO:<${bal}>`);
    expect(rcpt.code).toBe(503);
    await client.quit();
  });

  it.each([
    [
      undefined,
      '530 5.7.14 A client certificate issued by IGC-Sante is required on this port',
      'cert_missing',
    ],
    [
      'peer-unlisted',
      '550 5.7.1 Certificate DN is not a whitelisted MSSante operator',
      'operator_not_whitelisted',
    ],
    ['peer-revoked', '550 5.7.13 Client certificate has been revoked', 'cert_revoked'],
    ['peer-expired', '550 5.7.8 Client certificate is outside its validity period', 'cert_expired'],
    [
      'peer-foreign',
      '550 5.7.5 Client certificate does not chain to a trusted IGC-Sante authority',
      'cert_untrusted',
    ],
    [
      'person-dupont',
      '550 5.7.1 Certificate DN is not a whitelisted MSSante operator',
      'operator_not_whitelisted',
    ],
  ])('certificate %s: %s', async (who, expected, reason) => {
    const before = spoolEntries();
    const { client, mail } = await mailAs(who);
    expect(mail.raw).toBe(expected);
    // Nothing can follow: no recipient, no data.
    expect((await client.command(`RCPT TO:<${bal}>`)).code).toBe(503);
    expect((await client.command('DATA')).code).toBe(503);
    await client.quit();
    expect(spoolEntries()).toEqual(before);
    const entries = journalEvents(gw.config.dataDir);
    expect(entries.some((e) => e.event === 'smtp.mx.peer' && e.reason === reason)).toBe(true);
    const metrics = await gw.metrics.registry.getSingleMetricAsString('mssgw_smtp_peer_verdicts_total');
    expect(metrics).toMatch(new RegExp(`outcome="${reason}"\\} [1-9]`));
  });

  it('refuses a sender domain the operator certificate does not serve (553 5.7.1)', async () => {
    const { client, mail } = await mailAs('peer-trusted', 'someone@op.mssante.test');
    expect(mail.raw).toBe(
      '553 5.7.1 Sender domain is not served by your operator certificate in the MSSante whitelist',
    );
    await client.quit();
  });

  it('accepts the null sender (DSN/MDN) on the peer certificate alone', async () => {
    const { client, mail } = await mailAs('peer-trusted', '');
    expect(mail.code).toBe(250);
    await client.quit();
  });

  it("refuses unknown, suspended, other operators' and foreign-domain recipients with distinct replies", async () => {
    const suspended = uniqueBal('suspended');
    await gw.registry.create(
      { address: suspended, type: 'PER', owner: '810000000001' },
      { kind: 'system', id: 'test' },
    );
    await gw.registry.suspend(suspended, { kind: 'system', id: 'test' });
    const { client, mail } = await mailAs('peer-trusted');
    expect(mail.raw).toBe('250 2.1.0 Accepted');
    const replies: Reply[] = [];
    for (const rcpt of [
      uniqueBal('nobody'),
      suspended,
      `someone@${PEER_DOMAIN}`,
      '185057800608491@patient.mssante.fr',
      'someone@example.com',
      bal,
    ]) {
      replies.push(await client.command(`RCPT TO:<${rcpt}>`));
    }
    expect(replies.map((r) => r.raw)).toEqual([
      '550 5.1.1 No such mailbox here',
      '550 5.2.1 Mailbox is suspended',
      '550 5.7.1 Relaying denied: this domain belongs to another MSSante operator, deliver to its own MX',
      '550 5.7.1 Relaying denied: this domain belongs to another MSSante operator, deliver to its own MX',
      '550 5.7.1 Relaying denied: not a domain of ours, nor of the MSSante trust space',
      '250 2.1.5 Accepted',
    ]);
    await client.quit();
  });

  it('refuses TLS 1.1 and a cipher outside the MSSante profile at the handshake', async () => {
    for (const opts of [
      { minVersion: 'TLSv1' as const, maxVersion: 'TLSv1.1' as const, ciphers: 'DEFAULT@SECLEVEL=0' },
      { maxVersion: 'TLSv1.2' as const, ciphers: 'AES128-SHA' },
    ]) {
      const { client } = await SmtpTranscript.connect(gw.addresses.mx!.port);
      await client.command('EHLO x');
      await expect(client.startTls({ ...identity('peer-trusted'), ...opts })).rejects.toThrow();
      client.destroy();
    }
    const metrics = await gw.metrics.registry.getSingleMetricAsString('mssgw_tls_handshakes_total');
    expect(metrics).toMatch(/outcome="failed"/);
  });

  it('judges a resumed TLS session like a fresh one', async () => {
    // First connection: full handshake, keep the session ticket.
    const first = await mailAs('peer-trusted');
    expect(first.mail.code).toBe(250);
    await first.client.quit();
    const session = first.client.tlsSession;
    expect(session).toBeDefined();
    // Second connection resumes it: the peer certificate is still seen and still judged.
    const { client } = await SmtpTranscript.connect(gw.addresses.mx!.port);
    await client.command('EHLO mx.peer.mssante.test');
    const { socket } = await client.startTls({ ca: ca(), ...identity('peer-trusted'), session: session! });
    expect(socket.isSessionReused()).toBe(true);
    await client.command('EHLO mx.peer.mssante.test');
    expect((await client.command(`MAIL FROM:<sender@${PEER_DOMAIN}>`)).code).toBe(250);
    await client.quit();
    const entries = journalEvents(gw.config.dataDir);
    expect(entries.some((e) => e.event === 'smtp.mx.peer' && e.resumed === true && e.ok === true)).toBe(true);
  });

  it('a resumed session of a revoked peer is still refused', async () => {
    const first = await mailAs('peer-revoked');
    expect(first.mail.code).toBe(550);
    await first.client.quit();
    const session = first.client.tlsSession;
    const { client } = await SmtpTranscript.connect(gw.addresses.mx!.port);
    await client.command('EHLO x');
    await client.startTls({ ca: ca(), ...identity('peer-revoked'), ...(session ? { session } : {}) });
    await client.command('EHLO x');
    expect((await client.command(`MAIL FROM:<sender@${PEER_DOMAIN}>`)).raw).toBe(
      '550 5.7.13 Client certificate has been revoked',
    );
    await client.quit();
    expect(await inboxMessages(bal)).toEqual([]);
  });
});
