import { randomUUID } from 'node:crypto';
import net from 'node:net';
import { inject } from 'vitest';
import { openMailboxSession, type ImapEndpoint, type MasterCredentials } from '../../src/store/index.js';

/** A mailbox address no other test uses (the run shares one Dovecot). */
export function uniqueMailbox(name: string, domain = 'op.mssante.test'): string {
  return `${name}-${randomUUID().slice(0, 8)}@${domain}`;
}

/** Endpoint and master credentials of the shared Dovecot started by the global setup. */
export function sharedStore(): { imap: ImapEndpoint; lmtp: { path: string }; master: MasterCredentials } {
  const dovecot = inject('dovecot');
  return {
    imap: dovecot.imap,
    lmtp: dovecot.lmtp,
    master: { user: dovecot.masterUser, password: dovecot.masterPassword },
  };
}

/** Raw bytes (RFC822 source) of every message in a mailbox's INBOX, oldest first. */
export async function readInbox(
  imap: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
): Promise<Buffer[]> {
  const client = await openMailboxSession(imap, master, mailbox);
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const sources: Buffer[] = [];
      // FETCH 1:* on an empty mailbox is a BAD in IMAP; ask how many there are first.
      const status = await client.status('INBOX', { messages: true });
      if (status === false || !status.messages) return sources;
      for await (const message of client.fetch('1:*', { source: true }, { uid: false })) {
        if (message.source) sources.push(message.source);
      }
      return sources;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

/** In a fake server's reply list: cut the connection at this point. */
export const DROP = '<drop>';

/**
 * A scripted LMTP peer for failures a real Dovecot does not produce on demand. `script` gets each
 * client line and returns the reply lines to send (DROP cuts the connection there).
 */
export async function fakeLmtpServer(
  script: (line: string, state: { inData: boolean }) => string[],
  greeting: string | null = '220 fake LMTP',
): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    if (greeting) socket.write(`${greeting}\r\n`);
    const state = { inData: false };
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      buffered += chunk.toString('latin1');
      for (let eol = buffered.indexOf('\r\n'); eol >= 0; eol = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, eol);
        buffered = buffered.slice(eol + 2);
        for (const reply of script(line, state)) {
          if (reply === DROP) {
            socket.destroy();
            return;
          }
          socket.write(`${reply}\r\n`);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no address');
  return {
    port: address.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
