import type { StoreEndpoints } from './app-backends.js';
import type { LocalTransport } from './delivery/index.js';
import type { Logger } from './observability/index.js';
import type { MailboxProvisioner } from './registry/index.js';
import { checkStoreHealth, deliverLmtp, isInMailbox, provisionMailbox, purgeMailbox } from './store/index.js';

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

/**
 * Watches the store; when it comes back after being down, spooled messages are retried at once
 * rather than at their next backoff time.
 */
export class StoreHealthMonitor {
  up = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #store: StoreEndpoints;
  readonly #onRecovered: () => void;
  readonly #logger: Logger;

  constructor(
    store: StoreEndpoints,
    onRecovered: () => void,
    logger: Logger,
    readonly intervalMs = 5000,
  ) {
    this.#store = store;
    this.#onRecovered = onRecovered;
    this.#logger = logger;
  }

  async check(): Promise<{ imap: boolean; lmtp: boolean }> {
    const h = await checkStoreHealth(this.#store.imap, this.#store.lmtp);
    const up = h.imap && h.lmtp;
    if (up !== this.up) {
      this.#logger.info(
        { event: up ? 'store.up' : 'store.down', ...h },
        up ? 'mailbox store reachable' : 'mailbox store unreachable',
      );
      if (up) this.#onRecovered();
    }
    this.up = up;
    return h;
  }

  start(): void {
    const tick = () => {
      void this.check().finally(() => {
        if (this.#timer) this.#timer = setTimeout(tick, this.intervalMs).unref();
      });
    };
    this.#timer = setTimeout(tick, 0).unref();
  }

  stop(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
