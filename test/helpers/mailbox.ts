import { inject } from 'vitest';
import { openMailboxSession } from '../../src/store/index.js';

/** Raw messages in a mailbox's INBOX, read through the store's master login (as the gateway does). */
export async function inboxMessages(address: string): Promise<Buffer[]> {
  const dovecot = inject('dovecot');
  const client = await openMailboxSession(
    dovecot.imap,
    { user: dovecot.masterUser, password: dovecot.masterPassword },
    address,
  );
  try {
    const lock = await client.getMailboxLock('INBOX');
    try {
      const out: Buffer[] = [];
      const status = await client.status('INBOX', { messages: true });
      if (status === false || !status.messages) return out;
      for await (const msg of client.fetch('1:*', { source: true })) {
        if (msg.source) out.push(msg.source);
      }
      return out;
    } finally {
      lock.release();
    }
  } finally {
    await client.logout();
  }
}

/** Polls until `predicate` holds or the deadline passes (no fixed sleeps). */
export async function eventually<T>(
  fn: () => Promise<T>,
  predicate: (v: T) => boolean,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T;
  for (;;) {
    last = await fn();
    if (predicate(last)) return last;
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
}
