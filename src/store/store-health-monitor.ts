import type { Logger } from '../observability/index.js';
import type { ImapEndpoint, LmtpEndpoint } from './store-endpoints.js';
import { checkStoreHealth } from './store-probe.js';

/**
 * Watches the store; when it comes back after being down, spooled messages are retried at once
 * rather than at their next backoff time.
 */
export class StoreHealthMonitor {
  up = false;
  #timer: NodeJS.Timeout | undefined;
  readonly #store: { readonly imap: ImapEndpoint; readonly lmtp: LmtpEndpoint };
  readonly #onRecovered: () => void;
  readonly #logger: Logger;

  constructor(
    store: { readonly imap: ImapEndpoint; readonly lmtp: LmtpEndpoint },
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
