import type { LocalTransport } from '../delivery/index.js';
import type { MailboxProvisioner } from '../registry/index.js';
import {
  LmtpPool,
  type LmtpPoolOptions,
  isInMailbox,
  provisionMailbox,
  purgeMailbox,
} from '../store/index.js';
import type { StoreEndpoints } from './backends.js';

/**
 * Adapters between the store's functions and the interfaces delivery/ and registry/ depend on.
 * Local delivery goes over a pool of persistent LMTP connections; `close` ends the idle ones.
 */
export function lmtpTransport(
  store: StoreEndpoints,
  options: LmtpPoolOptions & { readonly lhlo: string; readonly timeoutMs: number },
): LocalTransport & { close(): void } {
  const pool = new LmtpPool(store.lmtp, options);
  const { timeoutMs } = options;
  return {
    close: () => pool.close(),
    // The spool file is opened only once the store accepted DATA for some recipient.
    deliver: (envelope, message) => pool.deliver(envelope, message),
    holds: (recipient, message) =>
      isInMailbox(store.imap, store.master, recipient, message, {
        connectTimeoutMs: timeoutMs,
        socketTimeoutMs: timeoutMs,
      }),
  };
}

export function storeProvisioner(store: StoreEndpoints): MailboxProvisioner {
  return { provision: (address) => provisionMailbox(store.imap, store.master, address) };
}

/** The lifecycle's purge of a deleted mailbox's mail, after the retention. */
export function storePurger(store: StoreEndpoints): { purge(address: string): Promise<void> } {
  return { purge: async (address) => void (await purgeMailbox(store.imap, store.master, address)) };
}
