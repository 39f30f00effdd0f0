import { readInbox, sharedStore } from './store-mailbox.js';

/** Raw messages in a mailbox's INBOX, read through the store's master login (as the gateway does). */
export function inboxMessages(address: string): Promise<Buffer[]> {
  const store = sharedStore();
  return readInbox(store.imap, store.master, address);
}

/** Polls until `predicate` holds or the deadline passes (no fixed sleeps). */
export async function eventually<T>(
  fn: () => Promise<T>,
  predicate: (v: T) => boolean,
  timeoutMs = 60_000,
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
