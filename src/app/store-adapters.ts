import type { LocalTransport } from '../delivery/index.js';
import type { MailboxProvisioner } from '../registry/index.js';
import { deliverLmtp, isInMailbox, provisionMailbox, purgeMailbox } from '../store/index.js';
import type { StoreEndpoints } from './backends.js';

/** Adapters between the store's functions and the interfaces delivery/ and registry/ depend on. */
export function lmtpTransport(store: StoreEndpoints, lhlo: string, timeoutMs: number): LocalTransport {
  return {
    deliver: (envelope, message) => deliverLmtp(store.lmtp, envelope, message(), { timeoutMs, lhlo }),
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
