import { createHash } from 'node:crypto';
import { ImapFlow } from 'imapflow';
import type { ClientAuthenticator } from '../../src/auth/index.js';
import { openMailboxSession } from '../../src/store/index.js';
import { pkiFile } from './gateway.js';
import { sharedStore } from './store-mailbox.js';

/** imapflow through the gateway with an access token: implicit TLS, or STARTTLS on the plain port. */
export async function gatewayClient(
  port: number,
  user: string,
  accessToken: string,
  mode: 'implicit' | 'starttls',
): Promise<ImapFlow> {
  const client = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: mode === 'implicit',
    doSTARTTLS: mode === 'starttls',
    tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
    auth: { user, accessToken },
    logger: false,
    disableAutoIdle: true,
  });
  client.on('error', () => {});
  await client.connect();
  return client;
}

/** imapflow straight to the shared Dovecot with the master login: the reference. */
export function directClient(mailbox: string): Promise<ImapFlow> {
  const store = sharedStore();
  return openMailboxSession(store.imap, store.master, mailbox);
}

/** The real authenticator offering one token mechanism less (imapflow prefers OAUTHBEARER). */
export function withoutMechanism(mechanism: 'OAUTHBEARER' | 'XOAUTH2') {
  return (real: ClientAuthenticator): ClientAuthenticator => ({
    mechanisms: (tls) => real.mechanisms(tls).filter((m) => m !== mechanism),
    authenticate: (request) => real.authenticate(request),
    recordActivity: (access, channel) => real.recordActivity(access, channel),
  });
}

/** What a client sees of a mailbox: folders, INBOX status, and each message (UID, flags, content hash). */
export async function mailboxSnapshot(client: ImapFlow): Promise<unknown> {
  const folders = (await client.list()).map((f) => ({
    path: f.path,
    specialUse: f.specialUse,
    flags: [...f.flags].sort(),
  }));
  const status = await client.status('INBOX', {
    messages: true,
    uidNext: true,
    uidValidity: true,
    unseen: true,
  });
  const lock = await client.getMailboxLock('INBOX');
  try {
    const messages: unknown[] = [];
    if (status !== false && status.messages) {
      for await (const m of client.fetch('1:*', {
        uid: true,
        flags: true,
        envelope: true,
        source: true,
        size: true,
      })) {
        messages.push({
          uid: m.uid,
          flags: [...(m.flags ?? [])].sort(),
          subject: m.envelope?.subject,
          size: m.size,
          sha256: createHash('sha256')
            .update(m.source ?? Buffer.alloc(0))
            .digest('hex'),
        });
      }
    }
    return { folders: folders.sort((a, b) => a.path.localeCompare(b.path)), status, messages };
  } finally {
    lock.release();
  }
}

export function message(subject: string, body = 'Bonjour,\r\nveuillez trouver le compte rendu.\r\n'): Buffer {
  return Buffer.from(
    `From: sender@peer.mssante.test\r\nTo: someone@op.mssante.test\r\nSubject: ${subject}\r\n` +
      `Message-ID: <${createHash('sha1').update(subject).digest('hex')}@peer.mssante.test>\r\n\r\n${body}`,
  );
}
