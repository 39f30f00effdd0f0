import { LOCAL_DESTINATION } from './spool-entry.js';

export interface HandOffLimits {
  /** Local attempts handed off at once (delivery.concurrency). */
  readonly local: number;
  /** Relay attempts handed off at once, all domains together (relay.concurrency). */
  readonly relay: number;
  /**
   * Relay attempts handed off at once to one domain (relay.maxConnectionsPerDestination): more could
   * only wait for one of its connections, and would keep the slots of other domains meanwhile.
   */
  readonly relayPerDestination: number;
  /** Whether this process relays at all (relay.enabled): if not, relay jobs wait in the queue. */
  readonly relayEnabled: boolean;
}

/**
 * The slots for attempts started in-process right after commit (ARCHITECTURE.md §6): a destination
 * gets one while its limits allow, else it goes through the queue like a retry. Counting only:
 * the attempts themselves run in DeliveryQueue.
 */
export class HandOffSlots {
  readonly #limits: HandOffLimits;
  #local = 0;
  #relay = 0;
  readonly #byDomain = new Map<string, number>();

  constructor(limits: HandOffLimits) {
    this.#limits = limits;
  }

  /** Hand-offs in progress. */
  get size(): number {
    return this.#local + this.#relay;
  }

  /**
   * Whether `destination` can ever get a slot in this process: not a relay destination while the
   * relay is off (those wait in the queue for a process that relays, never in memory).
   */
  mayTake(destination: string): boolean {
    return destination === LOCAL_DESTINATION || this.#limits.relayEnabled;
  }

  /** Takes a slot for `destination`; returns its release (call once), or undefined when full. */
  take(destination: string): (() => void) | undefined {
    const l = this.#limits;
    if (destination === LOCAL_DESTINATION) {
      if (this.#local >= l.local) return undefined;
      this.#local += 1;
      return once(() => (this.#local -= 1));
    }
    const inDomain = this.#byDomain.get(destination) ?? 0;
    if (!l.relayEnabled || this.#relay >= l.relay || inDomain >= l.relayPerDestination) return undefined;
    this.#relay += 1;
    this.#byDomain.set(destination, inDomain + 1);
    return once(() => {
      this.#relay -= 1;
      const left = (this.#byDomain.get(destination) ?? 1) - 1;
      if (left > 0) this.#byDomain.set(destination, left);
      else this.#byDomain.delete(destination);
    });
  }
}

function once(release: () => void): () => void {
  let done = false;
  return () => {
    if (done) return;
    done = true;
    release();
  };
}
