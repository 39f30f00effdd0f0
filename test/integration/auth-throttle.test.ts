import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { mintDevToken } from '../../src/auth/index.js';
import type { Gateway } from '../../src/app/index.js';
import { PERSON, createMailbox, secretImapClient, secretTransport } from '../helpers/admin-secrets.js';
import { pkiFile, startTestGateway } from '../helpers/gateway.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Throttling punishes the source, never the victim (issue #11, item 4): an attacker at 127.0.0.2
 * guessing a mailbox's secret locks out only itself; the owner at 127.0.0.1, with the right secret,
 * still sends and reads; and password failures never touch token logins, even from the attacker's
 * own address.
 */

const ATTACKER = '127.0.0.2';
const OWNER = '127.0.0.1';

let gw: Gateway;

beforeAll(async () => {
  gw = await startTestGateway({
    overrides: { auth: { passwordTypes: ['ORG'], maxFailuresPerAddress: 3, maxFailuresPerSource: 1000 } },
  });
});
afterAll(async () => {
  await gw?.stop();
});

/** One AUTH PLAIN on submission from `localAddress`, on a fresh connection: the final reply line. */
async function smtpPlain(localAddress: string, bal: string, secret: string): Promise<string> {
  const { client } = await SmtpTranscript.connect(gw.addresses.submission!.port, '127.0.0.1', localAddress);
  try {
    await client.command('EHLO attacker.example');
    await client.startTls({ ca: pkiFile('ca/root.crt') });
    await client.command('EHLO attacker.example');
    const b64 = Buffer.from(`${bal}\0${bal}\0${secret}`, 'utf8').toString('base64');
    return (await client.command(`AUTH PLAIN ${b64}`)).raw;
  } finally {
    await client.quit().catch(() => undefined);
  }
}

/** One IMAP AUTHENTICATE on the implicit TLS port from `localAddress`: the tagged line. */
async function imapAuthenticate(localAddress: string, command: string): Promise<string> {
  const { client } = await ImapTranscript.connect(gw.addresses.imapTls!.port, {
    tls: { ca: pkiFile('ca/root.crt') },
    localAddress,
  });
  try {
    return (await client.command('a1', command)).tagged;
  } finally {
    client.destroy();
  }
}

function plain(bal: string, secret: string): string {
  return `AUTHENTICATE PLAIN ${Buffer.from(`${bal}\0${bal}\0${secret}`, 'utf8').toString('base64')}`;
}

/** Bad secrets from the attacker until the gateway refuses it outright (bounded). */
async function guessUntilLocked(bal: string): Promise<{ smtp: string[]; imap: string[] }> {
  const smtp: string[] = [];
  const imap: string[] = [];
  for (let i = 0; i < 12 && !smtp.some((r) => r.startsWith('454 ')); i++) {
    smtp.push(await smtpPlain(ATTACKER, bal, `guess-${randomUUID()}`));
  }
  for (let i = 0; i < 12 && !imap.some((r) => r.includes('[UNAVAILABLE]')); i++) {
    imap.push(await imapAuthenticate(ATTACKER, plain(bal, `guess-${randomUUID()}`)));
  }
  return { smtp, imap };
}

describe('failed logins throttle their source, never the owner elsewhere', () => {
  it('the attacker at 127.0.0.2 is locked out; the owner at 127.0.0.1 sends and reads', async () => {
    const team = await createMailbox(gw, 'ORG', 'team');
    const colleague = await createMailbox(gw, 'ORG', 'colleague');
    const secret = `right-${randomUUID()}`;
    await gw.authenticator.secrets.set(team, secret);

    const { smtp, imap } = await guessUntilLocked(team);
    expect(smtp[0]).toBe('535 5.7.8 Authentication credentials invalid');
    expect(smtp.at(-1)).toMatch(/^454 4\.7\.0 /);
    // Failures count across channels: IMAP may find the lock already in force.
    for (const line of imap) expect(line).toMatch(/^a1 NO \[(AUTHENTICATIONFAILED|UNAVAILABLE)\] /);
    expect(imap.at(-1)).toBe('a1 NO [UNAVAILABLE] Too many failed attempts, try again later');
    // Locked out right now, the right secret does not help the attacker's address ...
    const limited = await gw.authenticator.limiter.check({ bal: team, remote: ATTACKER, kind: 'password' });
    expect(limited).toMatchObject({ allowed: false, scope: 'source_mailbox' });

    // ... but the owner, from another address, is never refused.
    expect(await smtpPlain(OWNER, team, secret)).toBe('235 2.7.0 Authentication successful');
    const sent = await secretTransport(gw, team, secret).sendMail({
      envelope: { from: team, to: [colleague] },
      from: team,
      to: colleague,
      subject: 'owner while attacked',
      text: 'Bonjour.',
    });
    expect(sent.response).toMatch(/^250 2\.0\.0 /);
    const client = await secretImapClient(gw, team, secret, 'PLAIN');
    try {
      expect((await client.mailboxOpen('INBOX')).path).toBe('INBOX');
    } finally {
      await client.logout();
    }
    expect(await imapAuthenticate(OWNER, plain(team, secret))).toMatch(/^a1 OK /);
  });

  it('password failures never affect a token login, even from the attacker address', async () => {
    const doctor = await createMailbox(gw, 'PER', 'dr');
    const { smtp } = await guessUntilLocked(doctor);
    expect(smtp.at(-1)).toMatch(/^454 4\.7\.0 /);
    const token = await mintDevToken({ pkiDir: inject('pkiDir'), subject: PERSON, ttlSeconds: 300 });
    const xoauth2 = Buffer.from(`user=${doctor}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
    expect(await imapAuthenticate(ATTACKER, `AUTHENTICATE XOAUTH2 ${xoauth2}`)).toMatch(/^a1 OK /);
    const { client } = await SmtpTranscript.connect(gw.addresses.submission!.port, '127.0.0.1', ATTACKER);
    try {
      await client.command('EHLO attacker.example');
      await client.startTls({ ca: pkiFile('ca/root.crt') });
      await client.command('EHLO attacker.example');
      expect((await client.command(`AUTH XOAUTH2 ${xoauth2}`)).raw).toBe(
        '235 2.7.0 Authentication successful',
      );
    } finally {
      await client.quit().catch(() => undefined);
    }
  });
});
