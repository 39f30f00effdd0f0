import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/free-port.js';
import { pkiFile } from '../helpers/gateway.js';
import { gatewayClient } from '../helpers/imap-clients.js';
import { directCapabilities } from '../helpers/imap-direct.js';
import { type ImapHarness, TEST_ACTOR, startImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript, type ImapTlsOptions } from '../helpers/imap-transcript.js';
import { eventually } from '../helpers/mailbox.js';
import { sharedStore } from '../helpers/store-mailbox.js';

/**
 * Logins through the real authenticator (registry on the run's Redis, development token issuer) to
 * the real shared Dovecot: exact responses for each refusal (RFC 5530), the error challenge of the
 * token mechanisms (RFC 7628 §3.2.3), and the store's capabilities after login.
 */
const DOCTOR = '810000000011';
const STRANGER = '810000000044';
let h: ImapHarness;
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const xoauth2 = (bal: string, token: string) => b64(`user=${bal}\x01auth=Bearer ${token}\x01\x01`);
const oauthbearer = (bal: string, token: string) =>
  b64(`n,a=${bal},\x01host=localhost\x01port=993\x01auth=Bearer ${token}\x01\x01`);

beforeAll(async () => {
  h = await startImapHarness();
});
afterAll(async () => {
  await h?.close();
});

async function tlsClient(tls: ImapTlsOptions = {}): Promise<ImapTranscript> {
  const { client } = await ImapTranscript.connect(h.addresses.implicit.port, {
    tls: { ca: pkiFile('ca/root.crt'), ...tls },
  });
  return client;
}

/** AUTHENTICATE with an initial response; after an error challenge, the client's dummy answer. */
async function refusedLogin(mechanism: string, response: string, answer: string) {
  const client = await tlsClient();
  client.write(`a1 AUTHENTICATE ${mechanism} ${response}\r\n`);
  const challenge = await client.readLine();
  client.write(`${answer}\r\n`);
  const final = await client.readLine();
  client.destroy();
  const json = challenge.startsWith('+ ')
    ? (JSON.parse(Buffer.from(challenge.slice(2), 'base64').toString()) as object)
    : undefined;
  return { challenge, json, final };
}

describe('IMAP login refusals', () => {
  it('XOAUTH2 with a bad token: error challenge, empty answer, then NO [AUTHENTICATIONFAILED]', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const token = `${(await h.token(DOCTOR)).slice(0, -4)}AAAA`;
    const r = await refusedLogin('XOAUTH2', xoauth2(bal, token), '');
    expect(r.json).toEqual({ status: '401', schemes: 'bearer', scope: 'openid' });
    expect(r.final).toBe('a1 NO [AUTHENTICATIONFAILED] Access token not valid');
  });

  it('OAUTHBEARER with an expired token: RFC 7628 error, AQ== answer, then NO [EXPIRED]', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const r = await refusedLogin('OAUTHBEARER', oauthbearer(bal, await h.expiredToken(DOCTOR)), 'AQ==');
    expect(r.json).toMatchObject({ status: 'invalid_token', scope: 'openid' });
    expect(r.final).toBe('a1 NO [EXPIRED] Access token expired, get a new one');
  });

  it('a person without a right: NO [AUTHORIZATIONFAILED]', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const r = await refusedLogin('XOAUTH2', xoauth2(bal, await h.token(STRANGER)), '');
    expect(r.final).toBe('a1 NO [AUTHORIZATIONFAILED] This identity may not open this mailbox');
  });

  it('a suspended mailbox: NO [CONTACTADMIN]', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    await h.registry.suspend(bal, TEST_ACTOR);
    const r = await refusedLogin('XOAUTH2', xoauth2(bal, await h.token(DOCTOR)), '');
    expect(r.final).toBe('a1 NO [CONTACTADMIN] Mailbox suspended, contact your operator');
  });

  it('a cancelled error challenge is a BAD (RFC 9051 §6.2.2)', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const r = await refusedLogin('XOAUTH2', xoauth2(bal, 'not-a-jwt'), '*');
    expect(r.final).toBe('a1 BAD Authentication cancelled');
  });

  it('three failed logins on one connection end it with BYE', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await tlsClient();
    for (const tag of ['f1', 'f2', 'f3']) {
      client.write(`${tag} AUTHENTICATE XOAUTH2 ${xoauth2(bal, 'not-a-jwt')}\r\n`);
      expect(await client.readLine()).toMatch(/^\+ /);
      client.write('\r\n');
      expect(await client.readLine()).toBe(`${tag} NO [AUTHENTICATIONFAILED] Access token not valid`);
    }
    expect(await client.readToEnd()).toEqual(['* BYE Too many failed logins']);
  });

  it('rate limited after failures: NO [UNAVAILABLE], the token itself not even checked', async () => {
    const strict = await startImapHarness({ auth: { maxFailuresPerAddress: 1 } });
    try {
      const bal = await strict.mailbox('PER', DOCTOR);
      const finals: string[] = [];
      // Each failure from the limit on locks the mailbox for 1 s, then 2 s, ...: one of the next
      // attempts lands inside a lock.
      for (let i = 0; i < 4 && !finals.some((f) => f.includes('[UNAVAILABLE]')); i++) {
        const { client } = await ImapTranscript.connect(strict.addresses.implicit.port, {
          tls: { ca: pkiFile('ca/root.crt') },
        });
        client.write(`r1 AUTHENTICATE XOAUTH2 ${xoauth2(bal, 'not-a-jwt')}\r\n`);
        expect(await client.readLine()).toMatch(/^\+ /);
        client.write('\r\n');
        finals.push(await client.readLine());
        client.destroy();
      }
      expect(finals[0]).toBe('r1 NO [AUTHENTICATIONFAILED] Access token not valid');
      expect(finals.at(-1)).toBe('r1 NO [UNAVAILABLE] Too many failed attempts, try again later');
    } finally {
      await strict.close();
    }
  });

  it('EXTERNAL is not offered without a verified certificate: NO [CANNOT]', async () => {
    const client = await tlsClient();
    expect((await client.command('e1', 'AUTHENTICATE EXTERNAL =')).tagged).toBe(
      'e1 NO [CANNOT] This authentication mechanism is not allowed here',
    );
    client.destroy();
  });

  it('the store down: NO [UNAVAILABLE], and the client may try again', async () => {
    const down = await startImapHarness({
      store: { imap: { host: '127.0.0.1', port: await freePort() }, master: sharedStore().master },
    });
    try {
      const bal = await down.mailbox('PER', DOCTOR);
      const { client } = await ImapTranscript.connect(down.addresses.implicit.port, {
        tls: { ca: pkiFile('ca/root.crt') },
      });
      const reply = await client.command(
        'a1',
        `AUTHENTICATE XOAUTH2 ${xoauth2(bal, await down.token(DOCTOR))}`,
      );
      expect(reply.tagged).toBe('a1 NO [UNAVAILABLE] Mailbox store unavailable, try again later');
      expect((await client.command('a2', 'NOOP')).tagged).toBe('a2 OK NOOP completed');
      client.destroy();
      expect(down.observed).toContainEqual([
        'login',
        'XOAUTH2',
        'STORE_UNAVAILABLE',
        expect.any(Number) as unknown,
      ]);
    } finally {
      await down.close();
    }
  });
});

describe('IMAP login to the store', () => {
  it('answers with exactly the store’s capabilities, then speaks as the store', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await tlsClient();
    const reply = await client.command('a1', `AUTHENTICATE XOAUTH2 ${xoauth2(bal, await h.token(DOCTOR))}`);
    expect(reply.untagged).toEqual([]);
    const direct = await directCapabilities(bal);
    expect(reply.tagged).toBe(`a1 OK [${direct.slice(2)}] Logged in`);
    expect((await client.command('a2', 'CAPABILITY')).untagged).toEqual([direct]);
    expect(direct).not.toMatch(/STARTTLS|LOGINDISABLED|AUTH=/);
    const logout = await client.command('a3', 'LOGOUT');
    expect(logout.untagged).toEqual(['* BYE Logging out']);
    expect(logout.tagged).toMatch(/^a3 OK /);
    await client.readToEnd();
    const events = await eventually(
      () => Promise.resolve(h.journal()),
      (e) => e.some((x) => x.event === 'imap.session.closed' && x.bal === bal),
    );
    const login = events.find((e) => e.event === 'imap.login' && e.bal === bal);
    expect(login).toMatchObject({
      right: 'owner',
      mechanism: 'XOAUTH2',
      principal: { kind: 'person', nationalId: DOCTOR, via: 'development' },
      listener: 'implicit',
      remote: '127.0.0.1',
      tls: { protocol: 'TLSv1.3', cipher: expect.any(String) as unknown },
    });
    const closed = events.find((e) => e.event === 'imap.session.closed' && e.bal === bal);
    expect(closed).toMatchObject({
      end: 'store-closed',
      bytesFromClient: 26,
      durationMs: expect.any(Number) as unknown,
    });
    expect(closed?.bytesToClient).toBeGreaterThan(100);
    expect(JSON.stringify(events)).not.toMatch(/Bearer|eyJ/);
    const activity = await h.registry.activity(bal);
    expect(JSON.stringify(activity)).toMatch(/imap/);
  });

  it('passes commands pipelined after AUTHENTICATE to the store, in order', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await tlsClient();
    client.write(
      `a1 AUTHENTICATE XOAUTH2 ${xoauth2(bal, await h.token(DOCTOR))}\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n`,
    );
    expect(await client.readLine()).toMatch(/^a1 OK \[CAPABILITY IMAP4rev1 /);
    const rest = await client.readToEnd();
    expect(rest.some((l) => l.startsWith('a2 OK [READ-WRITE]'))).toBe(true);
    expect(rest.findIndex((l) => l.startsWith('a2 OK'))).toBeLessThan(
      rest.findIndex((l) => l.startsWith('a3 OK')),
    );
  });

  it('STARTTLS then OAUTHBEARER without SASL-IR (continuation)', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const { client } = await ImapTranscript.connect(h.addresses.starttls.port);
    await client.startTls({ ca: pkiFile('ca/root.crt') });
    client.write('a1 AUTHENTICATE OAUTHBEARER\r\n');
    expect(await client.readLine()).toBe('+ ');
    client.write(`${oauthbearer(bal, await h.token(DOCTOR))}\r\n`);
    expect(await client.readLine()).toMatch(/^a1 OK \[CAPABILITY IMAP4rev1 .*\] Logged in$/);
    expect((await client.command('a2', 'NOOP')).tagged).toMatch(/^a2 OK /);
    client.destroy();
    const login = h.journal().find((e) => e.event === 'imap.login' && e.bal === bal);
    expect(login).toMatchObject({ listener: 'starttls', mechanism: 'OAUTHBEARER' });
  });

  it('EXTERNAL with the application certificate on its APP mailbox, named or implied', async () => {
    const app = await h.mailbox('APP', '31800000000002', 'lab');
    const manifest = JSON.parse(readFileSync(path.join(h.pkiDir, 'manifest.json'), 'utf8')) as {
      leaves: Record<string, { subject: string }>;
    };
    await h.registry.grant(
      app,
      { right: 'application', certificateDn: manifest.leaves['app-lab']!.subject },
      TEST_ACTOR,
    );
    const cert = { key: pkiFile('app-lab.key'), cert: pkiFile('app-lab.chain.pem') };
    for (const response of [b64(app), '=']) {
      const client = await tlsClient(cert);
      expect((await client.command('x1', `AUTHENTICATE EXTERNAL ${response}`)).tagged).toMatch(
        /^x1 OK \[CAPABILITY /,
      );
      expect((await client.command('x2', 'SELECT INBOX')).tagged).toMatch(/^x2 OK \[READ-WRITE\]/);
      client.destroy();
    }
    const login = h.journal().find((e) => e.event === 'imap.login' && e.bal === app);
    expect(login).toMatchObject({
      right: 'application',
      principal: { kind: 'application', dn: expect.stringContaining('LOGICIEL-LABO-DEV') as unknown },
    });
  });
});

describe('IMAP login with imapflow', () => {
  it('logs in with OAUTHBEARER, its first choice, and opens INBOX', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await gatewayClient(h.addresses.implicit.port, bal, await h.token(DOCTOR), 'implicit');
    expect((await client.mailboxOpen('INBOX')).path).toBe('INBOX');
    await client.logout();
    expect(h.journal().find((e) => e.event === 'imap.login' && e.bal === bal)).toMatchObject({
      mechanism: 'OAUTHBEARER',
    });
  });

  it('reports a refused token as an authentication failure', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    await expect(
      gatewayClient(h.addresses.implicit.port, bal, await h.expiredToken(DOCTOR), 'implicit'),
    ).rejects.toMatchObject({ authenticationFailed: true, serverResponseCode: 'EXPIRED' });
  });
});

describe('IMAP LOGIN with an operator-managed secret', () => {
  it('logs in an ORG mailbox where passwords are allowed, never before TLS', async () => {
    const secrets = await startImapHarness({ passwordTypes: ['ORG'] });
    try {
      const team = await secrets.mailbox('ORG', '41690000001', 'team');
      await secrets.authenticator.secrets.set(team, 'correct horse battery staple');
      const { client, greeting } = await ImapTranscript.connect(secrets.addresses.implicit.port, {
        tls: { ca: pkiFile('ca/root.crt') },
      });
      expect(greeting).toContain('AUTH=PLAIN AUTH=LOGIN');
      expect(greeting).not.toContain('LOGINDISABLED');
      expect((await client.command('l1', `LOGIN ${team} wrong`)).tagged).toBe(
        'l1 NO [AUTHENTICATIONFAILED] Authentication failed',
      );
      expect((await client.command('l2', `LOGIN ${team} "correct horse battery staple"`)).tagged).toMatch(
        /^l2 OK \[CAPABILITY /,
      );
      client.destroy();
    } finally {
      await secrets.close();
    }
  });
});
