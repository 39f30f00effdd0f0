import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { parseSpoolEntry } from '../../src/delivery/index.js';
import { identity, pkiFile, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';
import { tokenSubmission } from '../helpers/smtp-clients.js';

const system = { kind: 'system' as const, id: 'test' };
const DOCTOR = '810000000011';
const SECRETARY = '810000000022';
const NURSE = '810000000033';
const STRANGER = '810000000044';

let gw: Gateway;
let pkiDir: string;
const token = (subject: string, ttlSeconds = 300, now?: Date) =>
  mintDevToken({ pkiDir, subject, ttlSeconds, ...(now ? { now } : {}) });

beforeAll(async () => {
  // Relay off: mail for other operators stays queued, so the tests can look at it (relay-*.test.ts
  // covers sending it).
  gw = await startTestGateway({ overrides: { relay: { enabled: false } } });
  pkiDir = gw.config.pkiDir;
});
afterAll(async () => {
  await gw?.stop();
});

function transport(user: string, accessToken: string, port = gw.addresses.submission!.port) {
  return tokenSubmission(port, user, accessToken);
}

function message(from: string, to: string, extra: Record<string, string> = {}) {
  return {
    envelope: { from, to: [to] },
    from,
    to,
    subject: `test ${randomUUID()}`,
    text: 'Bonjour, veuillez trouver le compte rendu.',
    headers: { 'X-MSS-NIL': 'LPS-TEST 1.0', ...extra },
  };
}

async function bal(prefix: string, type: 'PER' | 'ORG' | 'APP', owner: string): Promise<string> {
  const address = uniqueBal(prefix);
  await gw.registry.create({ address, type, owner }, system);
  return address;
}

/** Raw SMTP up to an authenticated (or refused) AUTH. */
async function authenticate(command: string, tls: Parameters<SmtpTranscript['startTls']>[0] = {}) {
  const { client } = await SmtpTranscript.connect(gw.addresses.submission!.port);
  await client.command('EHLO client.example');
  await client.startTls({ ca: pkiFile('ca/root.crt'), ...tls });
  const ehlo = await client.command('EHLO client.example');
  return { client, ehlo, reply: await client.command(command) };
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

describe('submission: authentication', () => {
  it('neither offers nor accepts AUTH before STARTTLS', async () => {
    const { client } = await SmtpTranscript.connect(gw.addresses.submission!.port);
    const ehlo = await client.command('EHLO client.example');
    expect(ehlo.lines.some((l) => l.startsWith('AUTH'))).toBe(false);
    // Refused as unknown, nothing authenticated (like Postfix's smtpd_tls_auth_only).
    expect((await client.command(`AUTH PLAIN ${b64('\0a\0b')}`)).raw).toBe(
      '500 5.5.2 Error: command not recognized',
    );
    expect((await client.command('MAIL FROM:<x@op.mssante.test>')).raw).toBe(
      '530 5.7.0 Authentication required (STARTTLS, then AUTH)',
    );
    await client.quit();
  });

  it('lets the owner send with XOAUTH2 (nodemailer) and records the activity', async () => {
    const doctor = await bal('doctor', 'PER', DOCTOR);
    const colleague = await bal('colleague', 'PER', NURSE);
    const info = await transport(doctor, await token(DOCTOR)).sendMail(message(doctor, colleague));
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const [stored] = await eventually(
      () => inboxMessages(colleague),
      (m) => m.length === 1,
    );
    expect(stored!.toString()).toMatch(/with ESMTPSA id/);
    const activity = await gw.registry.activity(doctor);
    expect(JSON.stringify(activity)).toMatch(/submission/);
  });

  it('takes OAUTHBEARER (RFC 7628) and EXTERNAL with the application certificate', async () => {
    const doctor = await bal('ob', 'PER', DOCTOR);
    const ob = await authenticate(
      `AUTH OAUTHBEARER ${b64(`n,a=${doctor},\x01host=localhost\x01port=587\x01auth=Bearer ${await token(DOCTOR)}\x01\x01`)}`,
    );
    // No PLAIN/LOGIN: auth.passwordTypes is empty by default.
    expect(ob.ehlo.lines.find((l) => l.startsWith('AUTH '))).toBe('AUTH XOAUTH2 OAUTHBEARER EXTERNAL');
    expect(ob.reply.raw).toBe('235 2.7.0 Authentication successful');
    await ob.client.quit();
    const app = await bal('lab', 'APP', '31800000000002');
    const dn = readFileSync(path.join(pkiDir, 'manifest.json'), 'utf8');
    const labDn = (JSON.parse(dn) as { leaves: Record<string, { subject: string }> }).leaves['app-lab']!
      .subject;
    await gw.registry.grant(app, { right: 'application', certificateDn: labDn }, system);
    const ext = await authenticate(`AUTH EXTERNAL ${b64(app)}`, identity('app-lab'));
    expect(ext.reply.raw).toBe('235 2.7.0 Authentication successful');
    expect((await ext.client.command(`MAIL FROM:<${app}>`)).code).toBe(250);
    await ext.client.quit();
  });

  it.each([
    [
      'a bad signature',
      async () => `${(await token(DOCTOR)).slice(0, -4)}AAAA`,
      '535 5.7.8 Access token not valid',
    ],
    [
      'an expired token',
      async () => token(DOCTOR, 3600, new Date(Date.now() - 7200_000)),
      '535 5.7.8 Access token expired, get a new one',
    ],
    ['a person without rights', async () => token(STRANGER), '535 5.7.8 No right to open this mailbox'],
  ])('refuses XOAUTH2 with %s: error challenge, then %s', async (_name, make, final) => {
    const doctor = await bal('refused', 'PER', DOCTOR);
    const { client, reply } = await authenticate(
      `AUTH XOAUTH2 ${b64(`user=${doctor}\x01auth=Bearer ${await make()}\x01\x01`)}`,
    );
    expect(reply.code).toBe(334);
    expect(JSON.parse(Buffer.from(reply.lines[0]!, 'base64').toString())).toHaveProperty('status');
    expect((await client.command('')).raw).toBe(final);
    await client.quit();
  });

  it('refuses a suspended mailbox with 525 5.7.13', async () => {
    const doctor = await bal('suspended', 'PER', DOCTOR);
    await gw.registry.suspend(doctor, system);
    const { client, reply } = await authenticate(
      `AUTH XOAUTH2 ${b64(`user=${doctor}\x01auth=Bearer ${await token(DOCTOR)}\x01\x01`)}`,
    );
    const final = reply.code === 334 ? await client.command('') : reply;
    expect(final.raw).toBe('525 5.7.13 Mailbox suspended or closed');
    await client.quit();
  });

  it('counts a refused login under one outcome in both login metrics, on IMAP and submission', async () => {
    const doctor = await bal('metric', 'PER', DOCTOR);
    const bad = `${(await token(DOCTOR)).slice(0, -4)}AAAA`;
    const xoauth2 = b64(`user=${doctor}\x01auth=Bearer ${bad}\x01\x01`);
    const { client, reply } = await authenticate(`AUTH XOAUTH2 ${xoauth2}`);
    expect(reply.code).toBe(334);
    expect((await client.command('')).raw).toBe('535 5.7.8 Access token not valid');
    await client.quit();
    const { client: imap } = await ImapTranscript.connect(gw.addresses.imapTls!.port, {
      tls: { ca: pkiFile('ca/root.crt') },
    });
    imap.write(`a1 AUTHENTICATE XOAUTH2 ${xoauth2}\r\n`);
    expect(await imap.readLine()).toMatch(/^\+ /);
    imap.write('\r\n');
    expect(await imap.readLine()).toBe('a1 NO [AUTHENTICATIONFAILED] Access token not valid');
    imap.destroy();
    const text = await gw.metrics.registry.metrics();
    const outcomes = (name: string, labels: string) =>
      new Set(
        [...text.matchAll(new RegExp(`^${name}\\{([^}]*)\\} [1-9]`, 'gm'))]
          .filter(([, l]) => l!.includes(labels))
          .map(([, l]) => /outcome="([^"]+)"/.exec(l!)![1]),
      );
    const imapLogins = outcomes('mssgw_imap_logins_total', 'mechanism="XOAUTH2"');
    const imapAuth = outcomes('mssgw_auth_attempts_total', 'channel="imap",mechanism="XOAUTH2"');
    const submissionAuth = outcomes('mssgw_auth_attempts_total', 'channel="submission",mechanism="XOAUTH2"');
    expect(imapLogins).toContain('token_invalid');
    expect(imapAuth).toContain('token_invalid');
    expect(submissionAuth).toContain('token_invalid');
    // Every outcome an IMAP login counted is one the authenticator names the same way.
    for (const o of imapLogins) if (o !== 'store_unavailable') expect(imapAuth).toContain(o);
  });
});

describe('submission: delegation and co-managed mailboxes', () => {
  it('a read-only delegate logs in but cannot send; with send she signs as Sender', async () => {
    const doctor = await bal('dr', 'PER', DOCTOR);
    const secretaryBal = await bal('secretariat', 'PER', SECRETARY);
    const patientSide = await bal('dest', 'PER', NURSE);
    await gw.registry.grant(doctor, { right: 'delegate', person: SECRETARY, scopes: ['read'] }, system);
    const readOnly = await authenticate(
      `AUTH XOAUTH2 ${b64(`user=${doctor}\x01auth=Bearer ${await token(SECRETARY)}\x01\x01`)}`,
    );
    expect(readOnly.reply.raw).toBe('235 2.7.0 Authentication successful');
    expect((await readOnly.client.command(`MAIL FROM:<${doctor}>`)).raw).toBe(
      '550 5.7.1 Your right on this mailbox does not include sending',
    );
    await readOnly.client.quit();

    await gw.registry.grant(
      doctor,
      { right: 'delegate', person: SECRETARY, scopes: ['read', 'send'] },
      system,
    );
    await transport(doctor, await token(SECRETARY)).sendMail(message(doctor, patientSide));
    const [stored] = await eventually(
      () => inboxMessages(patientSide),
      (m) => m.length === 1,
    );
    expect(stored!.toString()).toMatch(
      new RegExp(`^Sender: <${secretaryBal.replace(/\./g, '\\.')}>\\r$`, 'm'),
    );
    expect(stored!.toString()).toMatch(new RegExp(`^From: ${doctor.replace(/\./g, '\\.')}\\r$`, 'm'));

    await gw.registry.revoke(doctor, { person: SECRETARY }, system);
    await expect(
      transport(doctor, await token(SECRETARY)).sendMail(message(doctor, patientSide)),
    ).rejects.toThrow(/535/);
  });

  it('an expired delegation stops working at its expiry', async () => {
    const doctor = await bal('dr-exp', 'PER', DOCTOR);
    await bal('sec-exp', 'PER', SECRETARY);
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    await gw.registry.grant(
      doctor,
      { right: 'delegate', person: SECRETARY, scopes: ['read', 'send'], expiresAt },
      system,
    );
    const before = await authenticate(
      `AUTH XOAUTH2 ${b64(`user=${doctor}\x01auth=Bearer ${await token(SECRETARY)}\x01\x01`)}`,
    );
    expect(before.reply.code).toBe(235);
    await before.client.quit();
    await eventually(
      () => Promise.resolve(Date.now()),
      (now) => now >= Date.parse(expiresAt),
      5000,
    );
    const after = await authenticate(
      `AUTH XOAUTH2 ${b64(`user=${doctor}\x01auth=Bearer ${await token(SECRETARY)}\x01\x01`)}`,
    );
    expect((await after.client.command('')).raw).toBe('535 5.7.8 No right to open this mailbox');
    await after.client.quit();
  });

  it('two members of an organisational mailbox send from it; a non-member cannot', async () => {
    const team = await bal('cardio', 'ORG', '41690000001');
    const dest = await bal('dest-org', 'PER', NURSE);
    for (const person of [DOCTOR, SECRETARY])
      await gw.registry.grant(team, { right: 'member', person }, system);
    for (const person of [DOCTOR, SECRETARY]) {
      const info = await transport(team, await token(person)).sendMail(message(team, dest));
      expect(info.response).toMatch(/^250 /);
    }
    await expect(transport(team, await token(STRANGER)).sendMail(message(team, dest))).rejects.toThrow(/535/);
    await eventually(
      () => inboxMessages(dest),
      (m) => m.length === 2,
    );
    expect(await inboxMessages(dest)).toHaveLength(2);
  });
});

describe('submission: never an open relay', () => {
  it('refuses what it must, with distinct codes, and keeps relay-bound mail spooled with its DSN parameters', async () => {
    const doctor = await bal('relay', 'PER', DOCTOR);
    const { client, reply } = await authenticate(
      `AUTH XOAUTH2 ${b64(`user=${doctor}\x01auth=Bearer ${await token(DOCTOR)}\x01\x01`)}`,
    );
    expect(reply.code).toBe(235);
    expect((await client.command('MAIL FROM:<other@op.mssante.test>')).raw).toBe(
      '553 5.7.1 Envelope sender must be the mailbox you logged in to',
    );
    expect((await client.command(`MAIL FROM:<${doctor}> RET=HDRS ENVID=e1`)).code).toBe(250);
    const rcpts = await Promise.all(
      [
        'someone@gmail.com',
        '185057800608492@patient.mssante.fr',
        'jean@patient.mssante.fr',
        // Born in Corse-du-Sud, key computed as if 2A read 20 instead of 19: refused.
        '185052A00400649@patient.mssante.fr',
      ].map(async (r) => (await client.command(`RCPT TO:<${r}>`)).raw),
    );
    expect(rcpts).toEqual([
      '550 5.7.1 Recipient domain is outside the MSSante trust space: only MSSante mailboxes can be reached',
      '553 5.1.3 Not a valid patient mailbox: 15-digit INS with its key @patient.mssante.fr',
      '553 5.1.3 Not a valid patient mailbox: 15-digit INS with its key @patient.mssante.fr',
      '553 5.1.3 Not a valid patient mailbox: 15-digit INS with its key @patient.mssante.fr',
    ]);
    expect((await client.command('RCPT TO:<martin@peer.mssante.test> NOTIFY=FAILURE,DELAY')).code).toBe(250);
    expect((await client.command('RCPT TO:<185057800608491@patient.mssante.fr>')).code).toBe(250);
    // The same person's Corsican twin, key computed with 19 for 2A: reachable like everyone else.
    expect((await client.command('RCPT TO:<185052A00400676@patient.mssante.fr>')).code).toBe(250);
    const data = await client.data(
      `From: ${doctor}\r\nTo: martin@peer.mssante.test\r\nSubject: relay\r\n\r\nhello\r\n`,
    );
    expect(data.raw).toMatch(/^250 2\.0\.0 Ok: queued as /);
    await client.quit();
    const id = data.raw.split(' ').pop()!;
    const env = parseSpoolEntry(
      readFileSync(path.join(gw.config.dataDir, 'spool', 'queue', `${id}.entry`)),
    ).envelope;
    expect(env.dsn).toEqual({ ret: 'HDRS', envid: 'e1' });
    expect(env.recipients).toEqual([
      expect.objectContaining({
        address: 'martin@peer.mssante.test',
        route: 'relay',
        dsn: { notify: ['FAILURE', 'DELAY'] },
      }),
      expect.objectContaining({ address: '185057800608491@patient.mssante.fr', route: 'relay' }),
      expect.objectContaining({ address: '185052a00400676@patient.mssante.fr', route: 'relay' }),
    ]);
    // One job per destination domain, waiting for the relay.
    const jobs = await eventually(
      () => gw.delivery.list(),
      (list) => list.filter((j) => j.data.spoolId === id).length === 2,
      60_000,
    );
    expect(
      jobs
        .filter((j) => j.data.spoolId === id)
        .map((j) => [j.id, j.queue, j.state, j.data.recipients])
        .sort(),
    ).toEqual([
      [
        `${id}~patient.mssante.fr`,
        'relay',
        'waiting',
        ['185057800608491@patient.mssante.fr', '185052a00400676@patient.mssante.fr'],
      ],
      [`${id}~peer.mssante.test`, 'relay', 'waiting', ['martin@peer.mssante.test']],
    ]);
  });

  it('refuses a From: that is not the mailbox (554 5.7.1) and keeps nothing', async () => {
    const doctor = await bal('from', 'PER', DOCTOR);
    const dest = await bal('from-dest', 'PER', NURSE);
    await expect(
      transport(doctor, await token(DOCTOR)).sendMail({
        ...message(doctor, dest),
        from: 'someone.else@op.mssante.test',
      }),
    ).rejects.toThrow(/554 5\.7\.1 From: must be the mailbox/);
    expect(await inboxMessages(dest)).toEqual([]);
  });

  it('refuses MAIL without authentication (530) on the implicit-TLS port too', async () => {
    const socket = await new Promise<tls.TLSSocket>((resolve, reject) => {
      const s = tls.connect(
        {
          port: gw.addresses.submissionTls!.port,
          host: '127.0.0.1',
          ca: pkiFile('ca/root.crt'),
          servername: 'localhost',
        },
        () => resolve(s),
      );
      s.once('error', reject);
    });
    const lines: string[] = [];
    socket.setEncoding('utf8');
    const next = () =>
      new Promise<string>((resolve) => {
        const onData = (chunk: string) => {
          lines.push(...chunk.split('\r\n').filter(Boolean));
          const last = lines[lines.length - 1]!;
          if (/^\d{3} /.test(last)) {
            socket.off('data', onData);
            resolve(last);
          }
        };
        socket.on('data', onData);
      });
    expect(await next()).toMatch(/^220 /);
    socket.write('EHLO x\r\n');
    expect(await next()).toMatch(/^250 /);
    socket.write('MAIL FROM:<x@op.mssante.test>\r\n');
    expect(await next()).toMatch(/^530 5\.7\.0 /);
    socket.destroy();
  });
});
