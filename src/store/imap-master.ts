import type { ImapFlow } from 'imapflow';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import { SPECIAL_USE_FOLDERS } from './dovecot-config.js';
import { describeEndpoint, type ImapEndpoint, type MasterCredentials } from './store-endpoints.js';

export interface MailboxSessionOptions {
  /** Budget for connecting, the greeting and the login. Default 10 s. */
  readonly connectTimeoutMs?: number;
  /** Inactivity limit of the open session. Default 5 min. */
  readonly socketTimeoutMs?: number;
  /** Receives session errors (imapflow's own protocol logging stays off: it is verbose). */
  readonly logger?: Logger;
}

/** A mailbox name goes into a SASL field: no control characters, no spaces, not empty. */
function assertMailboxName(mailbox: string): void {
  if (!/^[^\s\p{Cc}]+$/u.test(mailbox)) {
    throw new GatewayError('BAL_INVALID_ADDRESS', 'mailbox name not usable for a store login', { mailbox });
  }
}

/**
 * Opens an IMAP session on the store as `mailbox`, authenticated as the master user (ARCHITECTURE.md
 * §4: Dovecot never sees a user's credential). SASL PLAIN with the mailbox as authorization
 * identity (RFC 4616 §2) rather than Dovecot's "mailbox*master" login name, so no character of
 * the mailbox name can be mistaken for the separator. The caller must `logout()` (or `close()`).
 */
export async function openMailboxSession(
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
  options: MailboxSessionOptions = {},
): Promise<ImapFlow> {
  assertMailboxName(mailbox);
  // Imported at the first session (creating or purging a mailbox), not at the gateway's start:
  // imapflow and its dependencies were a tenth of the start's module loading.
  const { ImapFlow } = await import('imapflow');
  const timeout = options.connectTimeoutMs ?? 10_000;
  const client = new ImapFlow({
    host: endpoint.host,
    port: endpoint.port,
    secure: false,
    // The store is on loopback or a trusted network (store.imap in the configuration).
    doSTARTTLS: false,
    auth: { user: master.user, pass: master.password, authzid: mailbox, loginMethod: 'AUTH=PLAIN' },
    logger: false,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: options.socketTimeoutMs ?? 300_000,
    disableAutoIdle: true,
  });
  client.on('error', (err: Error) => {
    options.logger?.warn({ event: 'store.imap.error', err: err.message }, 'store IMAP session error');
  });
  try {
    await client.connect();
    return client;
  } catch (err) {
    client.close();
    const refused = (err as { authenticationFailed?: boolean }).authenticationFailed === true;
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      refused ? 'the store refused the master login' : 'could not open an IMAP session on the store',
      { endpoint: describeEndpoint(endpoint), mailbox },
      { cause: err },
    );
  }
}

/**
 * Makes sure the mailbox exists in the store with INBOX and the special-use folders (Drafts, Sent,
 * Trash, Junk), subscribed. Idempotent: a second call finds everything and creates nothing. The
 * embedded Dovecot creates the folders itself at first login (`auto = subscribe`); an external
 * store without that configuration gets them created here, by name.
 */
export async function provisionMailbox(
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
  options: MailboxSessionOptions = {},
): Promise<void> {
  const client = await openMailboxSession(endpoint, master, mailbox, options);
  try {
    // STATUS on INBOX makes Dovecot create the mail directory (INBOX always exists, RFC 9051 §5.1).
    await client.status('INBOX', { messages: true });
    const listed = await client.list();
    const created: string[] = [];
    for (const wanted of SPECIAL_USE_FOLDERS) {
      const found =
        listed.find((f) => f.specialUse === wanted.specialUse) ?? listed.find((f) => f.path === wanted.name);
      if (found) {
        if (!found.subscribed) await client.mailboxSubscribe(found.path);
        continue;
      }
      await client.mailboxCreate(wanted.name);
      await client.mailboxSubscribe(wanted.name);
      created.push(wanted.name);
    }
    if (created.length > 0) {
      options.logger?.info(
        { event: 'store.mailbox.folders.created', mailbox, folders: created },
        'folders created',
      );
    }
  } catch (err) {
    throw new GatewayError('STORE_UNAVAILABLE', 'mailbox provisioning failed', { mailbox }, { cause: err });
  } finally {
    await client.logout().catch(() => client.close());
  }
}

/**
 * Removes every message of a mailbox, in every folder, for the retention of deleted mailboxes
 * (issue #6): the folders stay (the address is never reused, see registry/bal.ts), the mail goes.
 * Returns the number of messages removed.
 */
export async function purgeMailbox(
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
  options: MailboxSessionOptions = {},
): Promise<number> {
  const client = await openMailboxSession(endpoint, master, mailbox, options);
  let removed = 0;
  try {
    for (const folder of await client.list()) {
      if (folder.flags.has('\\Noselect')) continue;
      const lock = await client.getMailboxLock(folder.path);
      try {
        const exists = client.mailbox === false ? 0 : client.mailbox.exists;
        if (exists > 0) {
          await client.messageDelete('1:*');
          removed += exists;
        }
      } finally {
        lock.release();
      }
    }
  } finally {
    await client.logout().catch(() => client.close());
  }
  return removed;
}
