import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ImapFlow } from 'imapflow';
import { describe, expect, inject, it } from 'vitest';
import { createLogger } from '../../src/observability/index.js';
import {
  checkStoreHealth,
  deliverLmtp,
  openMailboxSession,
  provisionMailbox,
  startEmbeddedDovecot,
} from '../../src/store/index.js';
import { freePort } from '../helpers/free-port.js';
import { DROP, fakeLmtpServer, readInbox, sharedStore, uniqueMailbox } from '../helpers/store-mailbox.js';

const store = sharedStore();
const logger = createLogger({ level: 'silent' });

/** A message with the shapes that break careless transports. */
function trickyMessage(from: string, to: string): Buffer {
  return Buffer.concat([
    Buffer.from(
      [
        `From: <${from}>`,
        `To: <${to}>`,
        'Subject: =?UTF-8?Q?compte-rendu_op=C3=A9ratoire?=',
        `Message-ID: <${randomUUID()}@op.mssante.test>`,
        'X-MSS-Securite: 1',
        'X-MSS-Identifiant-Patient: 1234567890123456789012',
        'MIME-Version: 1.0',
        'Content-Type: text/plain; charset=utf-8',
        'Content-Transfer-Encoding: 8bit',
        '',
        'Patient vu en consultation: état stable, fièvre à 38,5 °C.',
        '.a line starting with a dot',
        '.',
        '..two dots',
        `${'long line '.repeat(1200)}end`,
        'Ω ≠ ∞, 日本語, emoji 🩺',
        '',
      ].join('\r\n'),
      'utf8',
    ),
  ]);
}

/** Dovecot's LMTP prepends Return-Path (RFC 5321 §4.4) and nothing else; the rest is ours. */
function stored(from: string, message: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`Return-Path: <${from}>\r\n`), message]);
}

/** Feeds a stream in odd-sized chunks so that CR/LF pairs and dots straddle chunk boundaries. */
function chunked(message: Buffer, size: number): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) chunks.push(message.subarray(at, at + size));
  return Readable.from(chunks);
}

describe('LMTP delivery to the store', () => {
  it('delivers to two recipients and the store keeps the bytes unchanged', async () => {
    const [alice, bob] = [uniqueMailbox('alice'), uniqueMailbox('bob')];
    const from = 'dr.sender@other-op.mssante.test';
    const message = trickyMessage(from, alice);
    const results = await deliverLmtp(store.lmtp, { from, to: [alice, bob] }, message, { lhlo: 'gw.test' });
    expect(results).toMatchObject([
      { recipient: alice, outcome: 'delivered', code: 250, enhancedCode: '2.0.0' },
      { recipient: bob, outcome: 'delivered', code: 250, enhancedCode: '2.0.0' },
    ]);
    for (const mailbox of [alice, bob]) {
      const [source, ...more] = await readInbox(store.imap, store.master, mailbox);
      expect(more).toHaveLength(0);
      expect(source?.equals(stored(from, message))).toBe(true);
    }
  });

  it('delivers a streamed message, whatever the chunk boundaries', async () => {
    const carol = uniqueMailbox('carol');
    const message = trickyMessage('', carol);
    for (const size of [1, 7, 4096]) {
      const results = await deliverLmtp(store.lmtp, { from: '', to: [carol] }, chunked(message, size));
      expect(results).toMatchObject([{ recipient: carol, outcome: 'delivered' }]);
    }
    const sources = await readInbox(store.imap, store.master, carol);
    expect(sources).toHaveLength(3);
    for (const source of sources) expect(source.equals(stored('', message))).toBe(true);
  });

  it('reports each recipient on its own, including those refused at RCPT', async () => {
    const dave = uniqueMailbox('dave');
    const plus = uniqueMailbox("o'brien+cardio");
    // '/' would make the local part a path in the mail home: the store refuses it.
    const slash = uniqueMailbox('dave/../../etc');
    const spaced = 'has space@op.mssante.test';
    const message = Buffer.from('Subject: per recipient\r\n\r\nbody\r\n');
    const to = [slash, dave, spaced, plus];
    const results = await deliverLmtp(store.lmtp, { from: 'x@op.mssante.test', to }, message);
    expect(results).toMatchObject([
      { recipient: slash, outcome: 'permanent', code: 550, enhancedCode: '5.1.1' },
      { recipient: dave, outcome: 'delivered', code: 250 },
      { recipient: spaced, outcome: 'permanent', code: 553, enhancedCode: '5.1.3' },
      // Exact addresses: '+' is no detail separator, and "'" is a valid address character.
      { recipient: plus, outcome: 'delivered', code: 250 },
    ]);
    expect(await readInbox(store.imap, store.master, dave)).toHaveLength(1);
    expect(await readInbox(store.imap, store.master, plus)).toHaveLength(1);
  });

  it('delivers nothing when the message source fails half-way', async () => {
    const judy = uniqueMailbox('judy');
    function* failing(): Generator<Buffer> {
      yield Buffer.from('Subject: truncated\r\n\r\nfirst half\r\n');
      throw new Error('disk read error');
    }
    await expect(
      deliverLmtp(store.lmtp, { from: '', to: [judy] }, Readable.from(failing())),
    ).rejects.toMatchObject({
      code: 'INTERNAL',
    });
    expect(await readInbox(store.imap, store.master, judy)).toHaveLength(0);
  });

  it('reports every recipient as temporary when the store cannot be reached', async () => {
    const to = [uniqueMailbox('eve'), uniqueMailbox('frank')];
    const missing = { path: path.join(inject('scratchDir'), 'no-such-lmtp.sock') };
    const results = await deliverLmtp(missing, { from: '', to }, Buffer.from('Subject: x\r\n\r\nx\r\n'));
    expect(results).toMatchObject(
      to.map((recipient) => ({ recipient, outcome: 'temporary', code: 421, enhancedCode: '4.4.1' })),
    );
  });

  it('keeps the answers it got when the connection drops after DATA', async () => {
    // Replies for the first recipient, then the connection dies: the first is delivered (a retry
    // would duplicate it), only the second is left temporary.
    const server = await fakeLmtpServer((line, state) => {
      if (state.inData) return line === '.' ? ['250 2.0.0 <a> Saved', DROP] : [];
      if (line.startsWith('LHLO')) return ['250-fake', '250 ENHANCEDSTATUSCODES'];
      if (line === 'DATA') {
        state.inData = true;
        return ['354 go ahead'];
      }
      return ['250 2.1.5 OK'];
    });
    try {
      const endpoint = { host: '127.0.0.1', port: server.port };
      const results = await deliverLmtp(
        endpoint,
        { from: '', to: ['a@x.test', 'b@x.test'] },
        Buffer.from('x\r\n'),
      );
      expect(results).toMatchObject([
        { recipient: 'a@x.test', outcome: 'delivered', code: 250, enhancedCode: '2.0.0' },
        { recipient: 'b@x.test', outcome: 'temporary', code: 421, enhancedCode: '4.4.2' },
      ]);
    } finally {
      await server.close();
    }
  });

  it('gives up on a silent store after the timeout', async () => {
    const server = await fakeLmtpServer(() => [], null);
    try {
      const endpoint = { host: '127.0.0.1', port: server.port };
      const results = await deliverLmtp(endpoint, { from: '', to: ['a@x.test'] }, Buffer.from('x\r\n'), {
        timeoutMs: 300,
      });
      expect(results).toMatchObject([{ outcome: 'temporary', code: 421, enhancedCode: '4.4.2' }]);
      expect(results[0]?.text).toContain('timeout');
    } finally {
      await server.close();
    }
  });
});

describe('IMAP access through the master user', () => {
  it('refuses a direct login to a mailbox, whatever the password', async () => {
    const mailbox = uniqueMailbox('grace');
    await provisionMailbox(store.imap, store.master, mailbox);
    for (const pass of ['anything', store.master.password, '']) {
      const client = new ImapFlow({
        ...store.imap,
        secure: false,
        logger: false,
        auth: { user: mailbox, pass },
      });
      client.on('error', () => {});
      await expect(client.connect()).rejects.toMatchObject({ authenticationFailed: true });
      client.close();
    }
  });

  it('refuses the master user with a wrong password', async () => {
    const wrong = { user: store.master.user, password: 'not-the-master-password' };
    await expect(openMailboxSession(store.imap, wrong, uniqueMailbox('heidi'))).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
      message: 'the store refused the master login',
    });
  });

  it('provisions a mailbox with its special-use folders, idempotently', async () => {
    const mailbox = uniqueMailbox('ivan');
    const folders = async (): Promise<string[]> => {
      const client = await openMailboxSession(store.imap, store.master, mailbox);
      try {
        const list = await client.list();
        return list.map((f) => `${f.path}:${f.specialUse ?? ''}:${f.subscribed ? 'subscribed' : ''}`).sort();
      } finally {
        await client.logout();
      }
    };
    await provisionMailbox(store.imap, store.master, mailbox);
    const first = await folders();
    expect(first).toEqual([
      'Drafts:\\Drafts:subscribed',
      'INBOX:\\Inbox:subscribed',
      'Junk:\\Junk:subscribed',
      'Sent:\\Sent:subscribed',
      'Trash:\\Trash:subscribed',
    ]);
    await provisionMailbox(store.imap, store.master, mailbox);
    expect(await folders()).toEqual(first);
  });
});

describe('store health', () => {
  it('is up while Dovecot runs and down once it stopped', async () => {
    const dataDir = path.join(inject('scratchDir'), `health-${randomUUID().slice(0, 8)}`);
    const dovecot = await startEmbeddedDovecot({ dataDir, logger });
    try {
      expect(await checkStoreHealth(dovecot.imap, dovecot.lmtp)).toEqual({ imap: true, lmtp: true });
    } finally {
      await dovecot.stop();
    }
    expect(await checkStoreHealth(dovecot.imap, dovecot.lmtp, { timeoutMs: 500 })).toEqual({
      imap: false,
      lmtp: false,
    });
  });
});

describe('embedded Dovecot IMAP port (store.embeddedImapPort)', () => {
  it('listens on the port it is given, and names the setting when another process holds it', async () => {
    const port = await freePort();
    const dataDir = path.join(inject('scratchDir'), `port-${randomUUID().slice(0, 8)}`);
    const dovecot = await startEmbeddedDovecot({ dataDir, logger, imapPort: port });
    try {
      expect(dovecot.imap).toEqual({ host: '127.0.0.1', port });
      expect(await checkStoreHealth(dovecot.imap, dovecot.lmtp)).toEqual({ imap: true, lmtp: true });
      // A second store on the same fixed port: not retried elsewhere, refused with what to do.
      const other = path.join(inject('scratchDir'), `port-${randomUUID().slice(0, 8)}`);
      await expect(startEmbeddedDovecot({ dataDir: other, logger, imapPort: port })).rejects.toMatchObject({
        code: 'STORE_UNAVAILABLE',
        message: `the embedded Dovecot cannot listen on 127.0.0.1:${port} (store.embeddedImapPort): another process holds it; stop that process or choose another port`,
      });
    } finally {
      await dovecot.stop();
    }
  });
});
