import { GatewayError } from '../errors/index.js';
import { openMailboxSession, type MailboxSessionOptions } from './imap-master.js';
import type { ImapEndpoint, MasterCredentials } from './store-endpoints.js';

/** How far before acceptance the store's arrival dates are searched (clock skew, time zones). */
const SINCE_MARGIN_MS = 2 * 86_400_000;

export interface DeliveredCheck {
  /** The gateway's spool id, written in its `Received:` header at acceptance (`… id <spoolId>`). */
  readonly spoolId: string;
  /** When the gateway accepted the message: only mail that arrived since is searched. */
  readonly receivedAt: Date;
}

/**
 * Whether a message the gateway may already have handed to the store is in `mailbox` (ARCHITECTURE.md
 * §6, exactly once into our store): after a crash between the store's acceptance and our record of
 * it, the next attempt asks first. The message is recognised by our `Received:` trace header, which
 * carries the spool id (unique: time and 48 random bits); every selectable folder is searched (the
 * owner or a Sieve rule may have moved it), among messages that arrived since acceptance, through
 * the master login.
 *
 * Returns true when found, false when not. Throws STORE_UNAVAILABLE when the store could not be
 * asked (the caller must not deliver then). A mailbox the store does not know holds nothing:
 * false, and LMTP gives the definitive answer for that recipient.
 */
export async function isInMailbox(
  endpoint: ImapEndpoint,
  master: MasterCredentials,
  mailbox: string,
  check: DeliveredCheck,
  options: MailboxSessionOptions = {},
): Promise<boolean> {
  let client;
  try {
    client = await openMailboxSession(endpoint, master, mailbox, options);
  } catch (err) {
    // The login of an unknown mailbox is refused: nothing can be in it.
    const cause = (err as { cause?: { authenticationFailed?: boolean } }).cause;
    if (cause?.authenticationFailed === true) return false;
    throw err;
  }
  try {
    const since = new Date(check.receivedAt.getTime() - SINCE_MARGIN_MS);
    for (const folder of await client.list()) {
      if (folder.flags.has('\\Noselect') || folder.flags.has('\\NonExistent')) continue;
      const lock = await client.getMailboxLock(folder.path, { readOnly: true });
      try {
        if (client.mailbox !== false && client.mailbox.exists === 0) continue;
        const found = await client.search(
          { since, header: { received: `id ${check.spoolId}` } },
          { uid: true },
        );
        if (found && found.length > 0) return true;
      } finally {
        lock.release();
      }
    }
    return false;
  } catch (err) {
    throw new GatewayError(
      'STORE_UNAVAILABLE',
      'could not search the mailbox for an earlier delivery',
      { mailbox },
      { cause: err },
    );
  } finally {
    await client.logout().catch(() => client.close());
  }
}
