import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT, buildCli, runCli, type CliIo } from '../../src/admin/index.js';
import type { Gateway } from '../../src/app/index.js';
import { runMssgw, type CliRun } from '../helpers/admin-cli.js';
import {
  adminOf,
  createMailbox,
  journalText,
  secretImapClient,
  secretTransport,
  startSecretGateway,
} from '../helpers/admin-secrets.js';
import { freePort } from '../helpers/free-port.js';
import { pkiFile, scratchDir } from '../helpers/gateway.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

let gw: Gateway;
let dir: string;
/** Every CLI run of this file, to check that no secret was ever printed. */
const runs: CliRun[] = [];
/** Every secret this file used. */
const secrets: string[] = [];

beforeAll(async () => {
  gw = await startSecretGateway();
  dir = scratchDir('secrets-cli');
});
afterAll(async () => {
  await gw?.stop();
});

/** A fresh secret, remembered for the leak checks. */
function newSecret(label: string): string {
  const secret = `${label}-${randomUUID()}`;
  secrets.push(secret);
  return secret;
}

async function mssgw(args: string[], stdin?: string): Promise<CliRun> {
  const run = await runMssgw(['--api', adminOf(gw).url, ...args], {}, stdin === undefined ? {} : { stdin });
  runs.push(run);
  return run;
}

function secretFile(secret: string): string {
  const file = path.join(dir, `${randomUUID()}.secret`);
  writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

function message(from: string, to: string) {
  return { envelope: { from, to: [to] }, from, to, subject: `secret ${randomUUID()}`, text: 'Bonjour.' };
}

/** AUTH PLAIN by hand, with the mailbox as authzid and as authcid (RFC 4616 §2). */
async function rawPlain(bal: string, secret: string): Promise<string> {
  const { client } = await SmtpTranscript.connect(gw.addresses.submission!.port);
  await client.command('EHLO client.example');
  await client.startTls({ ca: pkiFile('ca/root.crt') });
  await client.command('EHLO client.example');
  const b64 = Buffer.from(`${bal}\0${bal}\0${secret}`, 'utf8').toString('base64');
  const reply = await client.command(`AUTH PLAIN ${b64}`);
  await client.quit();
  return reply.raw;
}

/** Opens INBOX through the gateway with the secret; its message count. */
async function imapInbox(bal: string, secret: string, method: 'PLAIN' | 'LOGIN'): Promise<number> {
  const client = await secretImapClient(gw, bal, secret, method);
  try {
    const inbox = await client.mailboxOpen('INBOX');
    expect(inbox.path).toBe('INBOX');
    return inbox.exists;
  } finally {
    await client.logout();
  }
}

async function expectLoginsRefused(bal: string, secret: string, to: string): Promise<void> {
  await expect(secretTransport(gw, bal, secret).sendMail(message(bal, to))).rejects.toMatchObject({
    responseCode: 535,
    response: '535 5.7.8 Authentication credentials invalid',
  });
  expect(await rawPlain(bal, secret)).toBe('535 5.7.8 Authentication credentials invalid');
  for (const method of ['PLAIN', 'LOGIN'] as const) {
    await expect(imapInbox(bal, secret, method)).rejects.toMatchObject({ authenticationFailed: true });
  }
}

describe('a secret set with mssgw opens the mailbox over submission and IMAP', () => {
  it('from standard input: sends with AUTH PLAIN and reads INBOX; a wrong secret opens nothing', async () => {
    const team = await createMailbox(gw, 'ORG', 'team');
    const colleague = await createMailbox(gw, 'ORG', 'colleague');
    const secret = newSecret('stdin');

    const set = await mssgw(['bal', 'secret', 'set', team], `${secret}\n`);
    expect(set).toEqual({
      code: 0,
      stdout: `secret of ${team} set: PLAIN/LOGIN logins to it now take this secret\n`,
      stderr: '',
    });

    const info = await secretTransport(gw, team, secret).sendMail(message(team, colleague));
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
    const delivered = await eventually(
      () => inboxMessages(colleague),
      (m) => m.length === 1,
    );
    expect(delivered).toHaveLength(1);
    expect(await rawPlain(team, secret)).toBe('235 2.7.0 Authentication successful');
    expect(await imapInbox(colleague, secret, 'PLAIN').catch((e: unknown) => e)).toMatchObject({
      authenticationFailed: true,
    });
    expect(await imapInbox(team, secret, 'PLAIN')).toBe(0);
    expect(await imapInbox(team, secret, 'LOGIN')).toBe(0);

    await expectLoginsRefused(team, `${secret}-wrong`, colleague);
    const events = journalEvents(gw.config.dataDir).filter((e) => e.bal === team || e.address === team);
    expect(events.find((e) => e.event === 'registry.secret.set')).toMatchObject({
      actor: { kind: 'cli', remote: '127.0.0.1' },
    });
    // Each path really took the secret: nodemailer and imapflow with PLAIN, imapflow's LOGIN command.
    const succeeded = events.filter((e) => e.event === 'auth.succeeded');
    expect(succeeded.map((e) => `${String(e.channel)} ${String(e.mechanism)}`)).toEqual([
      'submission PLAIN',
      'submission PLAIN',
      'imap PLAIN',
      'imap LOGIN',
    ]);
    expect(succeeded[0]).toMatchObject({ principal: { kind: 'secret', bal: team }, right: 'owner' });
    expect(events.filter((e) => e.event === 'auth.failed')).toHaveLength(4);
  });

  it('from a file, replacing the previous one; removed, PLAIN and LOGIN are refused', async () => {
    const team = await createMailbox(gw, 'ORG', 'desk');
    const colleague = await createMailbox(gw, 'ORG', 'peer');
    const first = newSecret('first');
    const second = newSecret('file');
    expect((await mssgw(['bal', 'secret', 'set', team], first)).code).toBe(0);

    const set = await mssgw(['bal', 'secret', 'set', team, '--secret-file', secretFile(second)]);
    expect(set).toMatchObject({ code: 0, stderr: '' });
    expect(await rawPlain(team, second)).toBe('235 2.7.0 Authentication successful');
    expect(await imapInbox(team, second, 'LOGIN')).toBe(0);
    await expectLoginsRefused(team, first, colleague);

    const shown = await mssgw(['bal', 'secret', 'show', team, '--json']);
    expect(JSON.parse(shown.stdout)).toEqual({ address: team, type: 'ORG', hasSecret: true, allowed: true });
    expect((await mssgw(['bal', 'secret', 'show', team])).stdout).toBe(
      `address:   ${team}\ntype:      ORG\nhasSecret: yes\nallowed:   yes (ORG is in auth.passwordTypes)\n`,
    );

    const removed = await mssgw(['bal', 'secret', 'remove', team]);
    expect(removed).toEqual({
      code: 0,
      stdout: `secret of ${team} removed: PLAIN/LOGIN logins to it are refused\n`,
      stderr: '',
    });
    await expectLoginsRefused(team, second, colleague);
    const again = await mssgw(['bal', 'secret', 'remove', team]);
    expect(again).toMatchObject({ code: 1, stdout: '' });
    expect(again.stderr).toMatch(
      new RegExp(`^error: ${team.replace(/\./g, '\\.')} has no secret .*\\(SECRET_NOT_FOUND\\)\\n$`),
    );
  });
});

describe('mssgw bal secret: refusals', () => {
  it('refuses a PER mailbox, a short secret and an unknown mailbox with exit code 1', async () => {
    const doctor = await createMailbox(gw, 'PER', 'dr');
    const per = await mssgw(['bal', 'secret', 'set', doctor], newSecret('per'));
    expect(per).toMatchObject({ code: 1, stdout: '' });
    expect(per.stderr).toMatch(
      /add PER to auth\.passwordTypes and restart the gateway.*\(SECRET_NOT_ALLOWED\)\n$/,
    );
    expect(await gw.authenticator.secrets.has(doctor)).toBe(false);

    const team = await createMailbox(gw, 'ORG', 'short');
    const short = await mssgw(['bal', 'secret', 'set', team], 'too short');
    expect(short.stderr).toBe(
      'error: the secret is too short: a mailbox secret has 12 characters at least and 1024 bytes (UTF-8) at most (SECRET_INVALID)\n',
    );
    expect(short.code).toBe(1);
    const unknown = await mssgw(['bal', 'secret', 'set', 'nobody@op.mssante.test'], newSecret('unknown'));
    expect(unknown).toMatchObject({ code: 1, stdout: '' });
    expect(unknown.stderr).toMatch(/\(BAL_NOT_FOUND\)\n$/);
  });

  it('says where the secret is read from when there is none, and that the API is unreachable', async () => {
    const team = await createMailbox(gw, 'ORG', 'input');
    expect(await mssgw(['bal', 'secret', 'set', team])).toEqual({
      code: 1,
      stdout: '',
      stderr: 'error: standard input is empty: it must hold the secret\n',
    });
    const missing = path.join(dir, 'absent.secret');
    expect(await mssgw(['bal', 'secret', 'set', team, '--secret-file', missing])).toEqual({
      code: 1,
      stdout: '',
      stderr: `error: cannot read the secret file ${missing} (ENOENT)\n`,
    });
    expect(await gw.authenticator.secrets.has(team)).toBe(false);

    const nowhere = `http://127.0.0.1:${await freePort()}`;
    const run = await runMssgw(
      ['--api', nowhere, 'bal', 'secret', 'set', team],
      {},
      { stdin: newSecret('x') },
    );
    runs.push(run);
    expect(run.code).toBe(3);
    expect(run.stderr).toMatch(/^error: cannot reach the admin API at /);
  });

  it('will not read a secret typed at a terminal (it would be echoed): usage error, exit 2', async () => {
    const team = await createMailbox(gw, 'ORG', 'tty');
    const out: string[] = [];
    const io: CliIo = {
      stdout: (text) => out.push(text),
      stderr: (text) => out.push(text),
      env: {},
      loadConfig: () => gw.config,
      stdin: () => Object.assign(Readable.from([]), { isTTY: true }),
    };
    const args = ['node', 'mssgw', '--api', adminOf(gw).url, 'bal', 'secret', 'set', team];
    expect(await runCli(buildCli(io), args, io)).toBe(EXIT.USAGE);
    expect(out.join('')).toMatch(
      /^error: the secret is read from standard input, which is a terminal: pipe it in \(mssgw bal secret set ADDRESS < FILE\) or pass --secret-file FILE\n/,
    );
    expect(await gw.authenticator.secrets.has(team)).toBe(false);
  });

  it('never printed or journaled a secret', () => {
    const journal = journalText(gw);
    const printed = runs.map((r) => r.stdout + r.stderr).join('');
    expect(runs.length).toBeGreaterThan(10);
    for (const secret of secrets) {
      expect(journal).not.toContain(secret);
      expect(printed).not.toContain(secret);
    }
    expect(journal).not.toContain('$scrypt$');
  });
});
