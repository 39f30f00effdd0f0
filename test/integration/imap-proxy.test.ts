import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { deliverLmtp } from '../../src/store/index.js';
import {
  directClient,
  gatewayClient,
  mailboxSnapshot,
  message,
  withoutMechanism,
} from '../helpers/imap-clients.js';
import { type ImapHarness, startImapHarness } from '../helpers/imap-harness.js';
import { ImapTranscript } from '../helpers/imap-transcript.js';
import { pkiFile } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';
import { sharedStore } from '../helpers/store-mailbox.js';

/**
 * A real client (imapflow) through the gateway to the real Dovecot: after login, bytes are piped
 * unchanged, so every result must be what the same client gets from Dovecot directly.
 */
const DOCTOR = '810000000011';
let h: ImapHarness;

beforeAll(async () => {
  // Without OAUTHBEARER on offer imapflow logs in with XOAUTH2, as MSSanté LPS software does.
  h = await startImapHarness({ authenticator: withoutMechanism('OAUTHBEARER') });
});
afterAll(async () => {
  await h?.close();
});

const deliver = (to: string, subject: string) =>
  deliverLmtp(sharedStore().lmtp, { from: 'sender@peer.mssante.test', to: [to] }, message(subject));

describe('IMAP session through the gateway', () => {
  it.each(['implicit', 'starttls'] as const)(
    'list, select, fetch, flags, append over %s TLS: the same as directly against Dovecot',
    async (mode) => {
      const bal = await h.mailbox('PER', DOCTOR);
      await deliver(bal, 'first');
      await deliver(bal, 'second');
      const port = mode === 'implicit' ? h.addresses.implicit.port : h.addresses.starttls.port;
      const proxied = await gatewayClient(port, bal, await h.token(DOCTOR), mode);
      expect(proxied.usable).toBe(true);
      expect(proxied.capabilities.has('AUTH=XOAUTH2')).toBe(false);

      const inbox = await proxied.mailboxOpen('INBOX');
      expect(inbox.exists).toBe(2);
      await proxied.messageFlagsAdd('1', ['\\Seen', '$Important']);
      const appended = await proxied.append('Drafts', message('draft', 'brouillon\r\n'), ['\\Draft']);
      expect(appended).toMatchObject({ destination: 'Drafts' });
      await proxied.mailboxClose();
      const throughGateway = await mailboxSnapshot(proxied);
      await proxied.logout();

      const direct = await directClient(bal);
      const fromStore = await mailboxSnapshot(direct);
      await direct.logout();
      expect(throughGateway).toEqual(fromStore);
      expect(fromStore).toMatchObject({
        messages: [
          { subject: 'first', flags: ['$Important', '\\Seen'] },
          { subject: 'second', flags: [] },
        ],
      });
    },
  );

  it('IDLE: a delivery to the mailbox arrives as EXISTS through the pipe', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await gatewayClient(h.addresses.implicit.port, bal, await h.token(DOCTOR), 'implicit');
    await client.mailboxOpen('INBOX');
    const exists = new Promise<number>((resolve) =>
      client.on('exists', (data: { count: number }) => resolve(data.count)),
    );
    // Once IDLE is issued the client sends nothing more: the EXISTS can only be the store's push.
    const idling = client.idle();
    expect(client.idling).toBe(true);
    await deliver(bal, 'during idle');
    expect(await exists).toBe(1);
    await client.logout();
    await idling.catch(() => undefined);
  });
});

describe('IMAP pipe ends', () => {
  const login = async (bal: string) => {
    const { client } = await ImapTranscript.connect(h.addresses.implicit.port, {
      tls: { ca: pkiFile('ca/root.crt') },
    });
    const response = Buffer.from(`user=${bal}\x01auth=Bearer ${await h.token(DOCTOR)}\x01\x01`);
    expect(
      (await client.command('a1', `AUTHENTICATE XOAUTH2 ${response.toString('base64')}`)).tagged,
    ).toMatch(/^a1 OK /);
    return client;
  };
  const closedEvent = (bal: string) =>
    eventually(
      () => Promise.resolve(h.journal().find((e) => e.event === 'imap.session.closed' && e.bal === bal)),
      (e) => e !== undefined,
    );

  it('half-close: a client that sends LOGOUT and ends its side still gets the answer', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await login(bal);
    client.socket.end('a2 LOGOUT\r\n');
    const lines = await client.readToEnd();
    expect(lines[0]).toBe('* BYE Logging out');
    expect(lines[1]).toMatch(/^a2 OK /);
    expect(await closedEvent(bal)).toMatchObject({ end: 'client-closed', bytesFromClient: 11 });
  });

  it('a client that vanishes takes its store session with it', async () => {
    const bal = await h.mailbox('PER', DOCTOR);
    const client = await login(bal);
    expect((await client.command('a2', 'SELECT INBOX')).tagged).toMatch(/^a2 OK /);
    client.socket.destroy();
    expect(await closedEvent(bal)).toMatchObject({ bal });
    expect(h.observed).toContainEqual(['connectionClosed', 'implicit', 'proxied']);
  });
});

describe('IMAP proxied session limits', () => {
  it('ends a busy piped session after maxSessionSeconds, so credentials and rights are checked again', async () => {
    const quick = await startImapHarness({ imap: { maxSessionSeconds: 1 } });
    try {
      const bal = await quick.mailbox('PER', DOCTOR);
      const { client } = await ImapTranscript.connect(quick.addresses.implicit.port, {
        tls: { ca: pkiFile('ca/root.crt') },
      });
      const response = Buffer.from(`user=${bal}\x01auth=Bearer ${await quick.token(DOCTOR)}\x01\x01`);
      expect(
        (await client.command('a1', `AUTHENTICATE XOAUTH2 ${response.toString('base64')}`)).tagged,
      ).toMatch(/^a1 OK /);
      // Commands back to back: never idle, yet the session ends at the limit.
      let n = 0;
      const started = Date.now();
      while (
        await client.command(`n${++n}`, 'NOOP').then(
          () => true,
          () => false,
        )
      ) {
        if (Date.now() - started > 10_000) throw new Error('session never ended');
      }
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
      const events = await eventually(
        () => Promise.resolve(quick.journal().filter((e) => e.event === 'imap.session.closed')),
        (e) => e.length > 0,
      );
      expect(events).toMatchObject([{ bal, end: 'session-limit' }]);
    } finally {
      await quick.close();
    }
  });

  it('closes a piped session idle for idleTimeoutSeconds, with a BYE', async () => {
    const quick = await startImapHarness({ imap: { idleTimeoutSeconds: 1 } });
    try {
      const bal = await quick.mailbox('PER', DOCTOR);
      const { client } = await ImapTranscript.connect(quick.addresses.implicit.port, {
        tls: { ca: pkiFile('ca/root.crt') },
      });
      const response = Buffer.from(`user=${bal}\x01auth=Bearer ${await quick.token(DOCTOR)}\x01\x01`);
      const login = await client.command('a1', `AUTHENTICATE XOAUTH2 ${response.toString('base64')}`);
      expect(login.tagged).toMatch(/^a1 OK /);
      expect((await client.command('a2', 'SELECT INBOX')).tagged).toMatch(/^a2 OK /);
      expect(await client.readToEnd(5_000)).toEqual(['* BYE Autologout; idle for too long']);
      const events = await eventually(
        () => Promise.resolve(quick.journal().filter((e) => e.event === 'imap.session.closed')),
        (e) => e.length > 0,
      );
      expect(events).toMatchObject([{ bal, end: 'idle-timeout' }]);
      expect(quick.observed).toContainEqual(['protocolError', 'idle-timeout']);
    } finally {
      await quick.close();
    }
  });

  it('close(): BYE before login, piped sessions cut after the grace period', async () => {
    const closing = await startImapHarness({ shutdownGraceMs: 300 });
    const bal = await closing.mailbox('PER', DOCTOR);
    const piped = await gatewayClient(
      closing.addresses.implicit.port,
      bal,
      await closing.token(DOCTOR),
      'implicit',
    );
    const pipedClosed = new Promise<void>((resolve) => piped.once('close', () => resolve()));
    const { client: waiting } = await ImapTranscript.connect(closing.addresses.starttls.port);
    const started = Date.now();
    await closing.close();
    expect(await waiting.readToEnd()).toEqual(['* BYE Server shutting down']);
    await pipedClosed;
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(closing.journal().filter((e) => e.event === 'imap.session.closed')).toMatchObject([
      { bal, end: 'shutdown' },
    ]);
  });
});
