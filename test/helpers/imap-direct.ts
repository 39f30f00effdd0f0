import { ImapTranscript } from './imap-transcript.js';
import { sharedStore } from './store-mailbox.js';

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');

/**
 * A raw session straight to the shared Dovecot, logged in as `mailbox` with the master user (SASL
 * PLAIN, authzid = the mailbox), as the gateway does: the reference a proxied session is compared to.
 */
export async function directStoreSession(
  mailbox: string,
): Promise<{ client: ImapTranscript; loginReply: string }> {
  const store = sharedStore();
  const { client } = await ImapTranscript.connect(store.imap.port);
  const response = b64(`${mailbox}\0${store.master.user}\0${store.master.password}`);
  const reply = await client.command('D1', `AUTHENTICATE PLAIN ${response}`);
  if (!reply.tagged.startsWith('D1 OK')) throw new Error(`direct login refused: ${reply.tagged}`);
  return { client, loginReply: reply.tagged };
}

/** The store's CAPABILITY answer after a master login to `mailbox`. */
export async function directCapabilities(mailbox: string): Promise<string> {
  const { client } = await directStoreSession(mailbox);
  try {
    const reply = await client.command('D2', 'CAPABILITY');
    const line = reply.untagged.find((l) => l.startsWith('* CAPABILITY '));
    if (!line) throw new Error('no CAPABILITY line');
    return line;
  } finally {
    client.destroy();
  }
}
