import { randomUUID } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { normalizeDn, readDevPkiManifest } from '../../src/pki/index.js';
import {
  adminOf,
  createMailbox,
  secretImapClient,
  secretPath,
  startSecretGateway,
  STRUCTURE,
} from '../helpers/admin-secrets.js';
import { call } from '../helpers/admin-http.js';
import {
  externalBackendsConfig,
  startChildGateway,
  stopChildGateways,
  type ReadyChildGateway,
} from '../helpers/child-gateway.js';
import { identity, pkiFile, scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { gatewayClient } from '../helpers/imap-clients.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { journalEvents } from '../helpers/journal.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { SmtpTranscript } from '../helpers/smtp-transcript.js';

/**
 * Rights changes reach open sessions within 5 s, on every node (issue #11 item 5): a delegate's
 * open IMAP session gets `* BYE` and is closed when her right is revoked or expires; her open
 * submission session has its next MAIL, and a DATA in progress, refused; the journal names both
 * identities.
 */

const OWNER = '810000000001';
const DELEGATE = '810000000002';
const CUT_WITHIN_MS = 5_000;

let gw: Gateway;
beforeAll(async () => {
  gw = await startTestGateway();
});
afterAll(async () => {
  await gw?.stop();
});
afterEach((context) => stopChildGateways(context));

type Admin = { url: string };

async function delegatedMailbox(admin: Admin, grant: Record<string, unknown> = {}): Promise<string> {
  const bal = uniqueBal('cabinet');
  const created = await call(admin, 'POST', '/v1/bals', {
    json: { address: bal, type: 'PER', owner: OWNER },
  });
  expect(created.status).toBe(201);
  const granted = await call(admin, 'POST', `/v1/bals/${encodeURIComponent(bal)}/rights`, {
    json: { right: 'delegate', person: DELEGATE, scopes: ['read', 'send'], ...grant },
  });
  expect(granted.status, JSON.stringify(granted.body)).toBe(201);
  return bal;
}

function revoke(admin: Admin, bal: string) {
  return call(admin, 'DELETE', `/v1/bals/${encodeURIComponent(bal)}/rights?person=${DELEGATE}`);
}

function delegateToken(): Promise<string> {
  return mintDevToken({ pkiDir: inject('pkiDir'), subject: DELEGATE, ttlSeconds: 600 });
}

function xoauth2(bal: string, token: string): string {
  return Buffer.from(`user=${bal}\x01auth=Bearer ${token}\x01\x01`).toString('base64');
}

/** A raw IMAP session logged in as the delegate, INBOX selected. */
async function imapSession(port: number, bal: string, token: string): Promise<ImapTranscript> {
  const { client } = await ImapTranscript.connect(port, { tls: { ca: pkiFile('ca/root.crt') } });
  expect((await client.command('a1', `AUTHENTICATE XOAUTH2 ${xoauth2(bal, token)}`)).tagged).toMatch(
    /^a1 OK /,
  );
  expect((await client.command('a2', 'SELECT INBOX')).tagged).toMatch(/^a2 OK /);
  return client;
}

/** A raw submission session authenticated as the delegate. */
async function smtpSession(port: number, bal: string, token: string): Promise<SmtpTranscript> {
  const { client } = await SmtpTranscript.connect(port);
  await client.command('EHLO lps.example');
  await client.startTls({ ca: pkiFile('ca/root.crt') });
  await client.command('EHLO lps.example');
  expect((await client.command(`AUTH XOAUTH2 ${xoauth2(bal, token)}`)).raw).toBe(
    '235 2.7.0 Authentication successful',
  );
  return client;
}

/** Lines until the server closes, and how long the close took from `since`. */
async function closedBy(client: ImapTranscript, since: number): Promise<{ lines: string[]; ms: number }> {
  const lines = await client.readToEnd(30_000);
  return { lines, ms: Date.now() - since };
}

describe('open sessions lose their right at once', () => {
  it('revoked: IMAP (raw and imapflow) gets BYE within 5 s; submission MAIL and DATA in progress refused', async () => {
    const admin = adminOf(gw);
    const bal = await delegatedMailbox(admin);
    const token = await delegateToken();
    const imap = await imapSession(gw.addresses.imapTls!.port, bal, token);
    const flow = await gatewayClient(gw.addresses.imapTls!.port, bal, token, 'implicit');
    await flow.mailboxOpen('INBOX');
    const flowClosed = new Promise<number>((resolve) => flow.once('close', () => resolve(Date.now())));
    const idle = await smtpSession(gw.addresses.submission!.port, bal, token);
    const busy = await smtpSession(gw.addresses.submission!.port, bal, token);
    expect((await busy.command(`MAIL FROM:<${bal}>`)).code).toBe(250);
    expect((await busy.command(`RCPT TO:<${bal}>`)).code).toBe(250);
    expect((await busy.command('DATA')).code).toBe(354);
    busy.write(`From: <${bal}>\r\nTo: <${bal}>\r\nSubject: in flight ${randomUUID()}\r\n\r\nBonjour,\r\n`);

    const revokedAt = Date.now();
    expect((await revoke(admin, bal)).status).toBe(200);
    const { lines, ms } = await closedBy(imap, revokedAt);
    expect(lines.at(-1)).toBe('* BYE [AUTHORIZATIONFAILED] Your right on this mailbox was revoked');
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    expect((await flowClosed) - revokedAt).toBeLessThan(CUT_WITHIN_MS);

    // The DATA in progress ends: refused, nothing committed.
    const data = await busy.command('.');
    expect(data.raw).toBe('535 5.7.8 No right to open this mailbox');
    expect((await idle.command(`MAIL FROM:<${bal}>`)).raw).toBe('535 5.7.8 No right to open this mailbox');
    await idle.quit().catch(() => undefined);
    await busy.quit().catch(() => undefined);
    expect(await inboxMessages(bal)).toHaveLength(0);

    const events = await eventually(
      () => Promise.resolve(journalEvents(gw.config.dataDir).filter((e) => e.bal === bal)),
      (e) => e.filter((x) => x.event === 'session.cut').length >= 4,
    );
    const cuts = events.filter((e) => e.event === 'session.cut');
    expect(cuts.map((c) => c.channel).sort()).toEqual(['imap', 'imap', 'submission', 'submission']);
    for (const cut of cuts) {
      expect(cut).toMatchObject({
        reason: 'right_revoked',
        right: 'delegate',
        principal: { kind: 'person', nationalId: DELEGATE },
        mailboxOwner: OWNER,
      });
    }
    const refused = events.filter((e) => e.event === 'smtp.submission.rejected');
    expect(refused.map((r) => r.command).sort()).toEqual(['DATA', 'MAIL']);
    for (const r of refused) {
      expect(r).toMatchObject({
        code: 'AUTH_NOT_AUTHORISED',
        principal: { kind: 'person', nationalId: DELEGATE },
      });
    }
  });

  it('expired: BYE [EXPIRED] at the expiry instant, and MAIL refused after it', async () => {
    const admin = adminOf(gw);
    const expiresAt = new Date(Date.now() + 8_000);
    const bal = await delegatedMailbox(admin, { expiresAt: expiresAt.toISOString() });
    const token = await delegateToken();
    const imap = await imapSession(gw.addresses.imapTls!.port, bal, token);
    const smtp = await smtpSession(gw.addresses.submission!.port, bal, token);
    const { lines, ms } = await closedBy(imap, expiresAt.getTime());
    expect(lines.at(-1)).toBe('* BYE [EXPIRED] Your right on this mailbox has expired');
    expect(ms).toBeGreaterThanOrEqual(0);
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    expect((await smtp.command(`MAIL FROM:<${bal}>`)).raw).toBe('535 5.7.8 No right to open this mailbox');
    await smtp.quit().catch(() => undefined);
    const cut = await eventually(
      () =>
        Promise.resolve(
          journalEvents(gw.config.dataDir).find(
            // Both sessions are cut at the expiry instant, in either order: the IMAP one is checked.
            (e) => e.event === 'session.cut' && e.bal === bal && e.channel === 'imap',
          ),
        ),
      (e) => e !== undefined,
    );
    expect(cut).toMatchObject({ channel: 'imap', reason: 'right_expired', mailboxOwner: OWNER });
  });

  it('suspended: the mailbox owner too gets BYE', async () => {
    const admin = adminOf(gw);
    const bal = await delegatedMailbox(admin);
    const owner = await mintDevToken({ pkiDir: inject('pkiDir'), subject: OWNER, ttlSeconds: 600 });
    const imap = await imapSession(gw.addresses.imapTls!.port, bal, owner);
    const at = Date.now();
    const suspended = await call(admin, 'POST', `/v1/bals/${encodeURIComponent(bal)}/suspend`, { json: {} });
    expect(suspended.status, JSON.stringify(suspended.body)).toBe(200);
    const { lines, ms } = await closedBy(imap, at);
    expect(lines.at(-1)).toBe('* BYE [AUTHORIZATIONFAILED] This mailbox was suspended');
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
  });
});

describe('removal of a member of a structure mailbox', () => {
  it('ORG and CAB: the member IMAP session gets BYE, her next MAIL is refused, the journal names her', async () => {
    const admin = adminOf(gw);
    const token = await delegateToken();
    for (const type of ['ORG', 'CAB'] as const) {
      const bal = uniqueBal(`member${type.toLowerCase()}`);
      const created = await call(admin, 'POST', '/v1/bals', {
        json: { address: bal, type, owner: STRUCTURE },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(201);
      const granted = await call(admin, 'POST', `/v1/bals/${encodeURIComponent(bal)}/rights`, {
        json: { right: 'member', person: DELEGATE },
      });
      expect(granted.status, JSON.stringify(granted.body)).toBe(201);
      const imap = await imapSession(gw.addresses.imapTls!.port, bal, token);
      const smtp = await smtpSession(gw.addresses.submission!.port, bal, token);
      const at = Date.now();
      expect((await revoke(admin, bal)).status).toBe(200);
      const { lines, ms } = await closedBy(imap, at);
      expect(lines.at(-1)).toBe('* BYE [AUTHORIZATIONFAILED] Your right on this mailbox was revoked');
      expect(ms).toBeLessThan(CUT_WITHIN_MS);
      expect((await smtp.command(`MAIL FROM:<${bal}>`)).raw).toBe('535 5.7.8 No right to open this mailbox');
      await smtp.quit().catch(() => undefined);
      const cuts = await eventually(
        () =>
          Promise.resolve(
            journalEvents(gw.config.dataDir).filter((e) => e.event === 'session.cut' && e.bal === bal),
          ),
        (e) => e.length >= 2,
      );
      expect(cuts.map((c) => c.channel).sort()).toEqual(['imap', 'submission']);
      for (const cut of cuts)
        expect(cut).toMatchObject({
          reason: 'right_revoked',
          right: 'member',
          principal: { kind: 'person', nationalId: DELEGATE },
          mailboxOwner: STRUCTURE,
        });
    }
  });
});

describe('removal of an application certificate', () => {
  it('the DN unbound from its APP mailbox: IMAP BYE, next MAIL refused, the journal names the DN', async () => {
    const admin = adminOf(gw);
    const manifest = await readDevPkiManifest(inject('pkiDir'));
    const dn = manifest!.leaves['app-lab'].subject;
    const bal = uniqueBal('labo');
    const created = await call(admin, 'POST', '/v1/bals', {
      json: { address: bal, type: 'APP', owner: STRUCTURE },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    const bound = await call(admin, 'POST', `/v1/bals/${encodeURIComponent(bal)}/rights`, {
      json: { right: 'application', certificateDn: dn },
    });
    expect(bound.status, JSON.stringify(bound.body)).toBe(201);
    const app = { ...identity('app-lab'), ca: pkiFile('ca/root.crt') };
    const { client: imap } = await ImapTranscript.connect(gw.addresses.imapTls!.port, { tls: app });
    expect(
      (await imap.command('a1', `AUTHENTICATE EXTERNAL ${Buffer.from(bal).toString('base64')}`)).tagged,
    ).toMatch(/^a1 OK /);
    const { client: smtp } = await SmtpTranscript.connect(gw.addresses.submission!.port);
    await smtp.command('EHLO lab.example');
    await smtp.startTls(app);
    await smtp.command('EHLO lab.example');
    expect((await smtp.command(`AUTH EXTERNAL ${Buffer.from(bal).toString('base64')}`)).code).toBe(235);

    const at = Date.now();
    const unbound = await call(
      admin,
      'DELETE',
      `/v1/bals/${encodeURIComponent(bal)}/rights?certificateDn=${encodeURIComponent(dn)}`,
    );
    expect(unbound.status, JSON.stringify(unbound.body)).toBe(200);
    const { lines, ms } = await closedBy(imap, at);
    expect(lines.at(-1)).toBe('* BYE [AUTHORIZATIONFAILED] Your right on this mailbox was revoked');
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    expect((await smtp.command(`MAIL FROM:<${bal}>`)).raw).toBe('535 5.7.8 No right to open this mailbox');
    await smtp.quit().catch(() => undefined);
    const cuts = await eventually(
      () =>
        Promise.resolve(
          journalEvents(gw.config.dataDir).filter((e) => e.event === 'session.cut' && e.bal === bal),
        ),
      (e) => e.length >= 2,
    );
    expect(cuts.map((c) => c.channel).sort()).toEqual(['imap', 'submission']);
    for (const cut of cuts)
      expect(cut).toMatchObject({
        reason: 'right_revoked',
        right: 'application',
        principal: { kind: 'application', dn: normalizeDn(dn) },
        mailboxOwner: STRUCTURE,
      });
  });
});

describe('on every node', () => {
  it('a revocation through node A cuts the session open on node B', async () => {
    const config = externalBackendsConfig({
      dataDir: scratchDir('cut-nodes'),
      prefix: `test:${randomUUID()}:`,
    });
    const a: ReadyChildGateway = await startChildGateway({ config, name: 'node-a' });
    const b: ReadyChildGateway = await startChildGateway({ config, name: 'node-b' });
    const adminA = { url: `http://127.0.0.1:${a.ports.admin}` };
    const bal = await delegatedMailbox(adminA);
    const listening = b.ready.listening as Record<string, string>;
    const imapTls = Number(listening.imapTls!.slice(listening.imapTls!.lastIndexOf(':') + 1));
    const imap = await imapSession(imapTls, bal, await delegateToken());
    const at = Date.now();
    expect((await revoke(adminA, bal)).status).toBe(200);
    const { lines, ms } = await closedBy(imap, at);
    expect(lines.at(-1)).toBe('* BYE [AUTHORIZATIONFAILED] Your right on this mailbox was revoked');
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
  });
});

describe('a removed or replaced secret', () => {
  // One gateway for both cases: each works on a mailbox of its own.
  let secretGw: Gateway;
  beforeAll(async () => {
    secretGw = await startSecretGateway();
  });
  afterAll(async () => {
    await secretGw?.stop();
  });

  const plainOf = (bal: string, secret: string) =>
    Buffer.from(`${bal}\0${bal}\0${secret}`).toString('base64');

  /** A raw IMAP session, an imapflow one and a submission session, all opened with `secret`. */
  async function openSessions(bal: string, secret: string) {
    const { client: imap } = await ImapTranscript.connect(secretGw.addresses.imapTls!.port, {
      tls: { ca: pkiFile('ca/root.crt') },
    });
    expect((await imap.command('a1', `AUTHENTICATE PLAIN ${plainOf(bal, secret)}`)).tagged).toMatch(
      /^a1 OK /,
    );
    expect((await imap.command('a2', 'SELECT INBOX')).tagged).toMatch(/^a2 OK /);
    const flow = await secretImapClient(secretGw, bal, secret);
    await flow.mailboxOpen('INBOX');
    const flowClosed = new Promise<number>((resolve) => flow.once('close', () => resolve(Date.now())));
    const { client: smtp } = await SmtpTranscript.connect(secretGw.addresses.submission!.port);
    await smtp.command('EHLO lps.example');
    await smtp.startTls({ ca: pkiFile('ca/root.crt') });
    await smtp.command('EHLO lps.example');
    expect((await smtp.command(`AUTH PLAIN ${plainOf(bal, secret)}`)).code).toBe(235);
    return { imap, flowClosed, smtp };
  }

  /** The three sessions' cuts in the journal, each with the reason and both identities. */
  async function journalledCuts(bal: string, reason: string) {
    const cuts = await eventually(
      () =>
        Promise.resolve(
          journalEvents(secretGw.config.dataDir).filter((e) => e.event === 'session.cut' && e.bal === bal),
        ),
      (e) => e.length >= 3,
    );
    expect(cuts.map((c) => c.channel).sort()).toEqual(['imap', 'imap', 'submission']);
    for (const cut of cuts) {
      expect(cut).toMatchObject({ reason, principal: { kind: 'secret', bal }, mailboxOwner: STRUCTURE });
    }
    return cuts;
  }

  it('cuts the IMAP sessions opened with it (BYE [AUTHENTICATIONFAILED]) and refuses the next MAIL', async () => {
    const admin = adminOf(secretGw);
    const bal = await createMailbox(secretGw, 'ORG', 'secretcut');
    const secret = `s3cret-${randomUUID()}`;
    expect((await call(admin, 'PUT', secretPath(bal), { json: { secret } })).status).toBe(204);
    const { imap, flowClosed, smtp } = await openSessions(bal, secret);

    const removedAt = Date.now();
    expect((await call(admin, 'DELETE', secretPath(bal))).status).toBe(204);
    const { lines, ms } = await closedBy(imap, removedAt);
    expect(lines.at(-1)).toBe('* BYE [AUTHENTICATIONFAILED] The secret you logged in with was removed');
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    expect((await flowClosed) - removedAt).toBeLessThan(CUT_WITHIN_MS);
    expect((await smtp.command(`MAIL FROM:<${bal}>`)).raw).toBe('535 5.7.8 No right to open this mailbox');
    await smtp.quit().catch(() => undefined);
    await journalledCuts(bal, 'secret_removed');
  });

  it('cuts the sessions opened with the old one, and the new one logs in', async () => {
    const admin = adminOf(secretGw);
    const bal = await createMailbox(secretGw, 'ORG', 'secretswap');
    const old = `s3cret-old-${randomUUID()}`;
    const fresh = `s3cret-new-${randomUUID()}`;
    expect((await call(admin, 'PUT', secretPath(bal), { json: { secret: old } })).status).toBe(204);
    const { imap, flowClosed, smtp } = await openSessions(bal, old);

    const replacedAt = Date.now();
    expect((await call(admin, 'PUT', secretPath(bal), { json: { secret: fresh } })).status).toBe(204);
    const { lines, ms } = await closedBy(imap, replacedAt);
    expect(lines.at(-1)).toBe('* BYE [AUTHENTICATIONFAILED] The secret you logged in with was replaced');
    expect(ms).toBeLessThan(CUT_WITHIN_MS);
    expect((await flowClosed) - replacedAt).toBeLessThan(CUT_WITHIN_MS);
    expect((await smtp.command(`MAIL FROM:<${bal}>`)).raw).toBe('535 5.7.8 No right to open this mailbox');
    await smtp.quit().catch(() => undefined);
    // The journal names the principal, never the secret or anything derived from it.
    for (const cut of await journalledCuts(bal, 'secret_replaced')) {
      expect(JSON.stringify(cut)).not.toMatch(/generation|s3cret/);
    }

    // The old secret opens nothing any more; the new one does, and its session stays.
    const { client: again } = await ImapTranscript.connect(secretGw.addresses.imapTls!.port, {
      tls: { ca: pkiFile('ca/root.crt') },
    });
    expect((await again.command('b1', `AUTHENTICATE PLAIN ${plainOf(bal, old)}`)).tagged).toMatch(/^b1 NO /);
    expect((await again.command('b2', `AUTHENTICATE PLAIN ${plainOf(bal, fresh)}`)).tagged).toMatch(
      /^b2 OK /,
    );
    expect((await again.command('b3', 'SELECT INBOX')).tagged).toMatch(/^b3 OK /);
    await again.command('b4', 'LOGOUT');
  });
});
