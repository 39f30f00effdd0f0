/** How much may wait in memory for a hand-off slot (delivery.handOffWait*). */
export interface HandOffWaitLimits {
  /** Destinations waiting at most (one per message and destination). */
  readonly entries: number;
  /** Bytes of the spooled messages they refer to, at most (the sizes of their entries). */
  readonly bytes: number;
}

/** A waiting entry handed its slot: start its attempt, then call `release` once it ends. */
export interface Served<T> {
  readonly item: T;
  readonly destination: string;
  readonly release: () => void;
}

interface Waiting<T> {
  readonly seq: number;
  readonly destination: string;
  readonly item: T;
  readonly bytes: number;
}

/**
 * The destinations committed while every hand-off slot for them was taken (ARCHITECTURE.md §6):
 * they wait here, first in first out, and are handed off as slots free up, rather than each going
 * through the queue (a BullMQ add, a fetch, a lock, a completion: some twenty Redis commands).
 * Bounded by count and by the bytes of the messages referred to; past either bound the caller
 * queues the destination. Memory only: what waits here when the process dies is queued again by
 * the next start's reconciliation, from the spool, like a hand-off in flight.
 */
export class HandOffWaitList<T> {
  readonly #limits: HandOffWaitLimits;
  /** Keys in arrival order, per destination; a deleted key is skipped when met. */
  readonly #fifos = new Map<string, Fifo<string>>();
  readonly #byKey = new Map<string, Waiting<T>>();
  #bytes = 0;
  #seq = 0;

  constructor(limits: HandOffWaitLimits) {
    this.#limits = limits;
  }

  get size(): number {
    return this.#byKey.size;
  }

  has(key: string): boolean {
    return this.#byKey.has(key);
  }

  /** Entries waiting for `destination`: a newcomer queues behind them rather than overtaking. */
  waiting(destination: string): boolean {
    return (this.#fifos.get(destination)?.length ?? 0) > 0;
  }

  /** Entries waiting for local delivery and for the relay (the metric). */
  counts(local: (destination: string) => boolean): { local: number; relay: number } {
    let n = 0;
    for (const w of this.#byKey.values()) if (local(w.destination)) n += 1;
    return { local: n, relay: this.#byKey.size - n };
  }

  /** Adds `item` under `key` (unique while it waits); false, and nothing added, past the bounds. */
  push(key: string, destination: string, item: T, bytes: number): boolean {
    if (this.#byKey.has(key)) return true;
    if (this.#byKey.size + 1 > this.#limits.entries || this.#bytes + bytes > this.#limits.bytes) return false;
    this.#byKey.set(key, { seq: this.#seq++, destination, item, bytes });
    this.#bytes += bytes;
    let fifo = this.#fifos.get(destination);
    if (!fifo) this.#fifos.set(destination, (fifo = new Fifo<string>()));
    fifo.push(key);
    return true;
  }

  /** Takes `key` out (its job got it first); the item, or undefined when it was not waiting. */
  delete(key: string): T | undefined {
    const w = this.#byKey.get(key);
    if (!w) return undefined;
    this.#forget(key, w);
    return w.item;
  }

  /**
   * Serves the oldest waiting entries whose destination gets a slot from `take` (which returns the
   * slot's release, or undefined when that destination's slots are all taken), oldest first across
   * destinations, until none does.
   */
  serve(take: (destination: string) => (() => void) | undefined): Array<Served<T>> {
    const served: Array<Served<T>> = [];
    for (;;) {
      const heads = [...this.#fifos.keys()]
        .map((destination) => this.#head(destination))
        .filter((w): w is [string, Waiting<T>] => w !== undefined)
        .sort((a, b) => a[1].seq - b[1].seq);
      const next = heads.find(([, w]) => {
        const release = take(w.destination);
        if (release) served.push({ item: w.item, destination: w.destination, release });
        return release !== undefined;
      });
      if (!next) return served;
      this.#forget(next[0], next[1]);
    }
  }

  /** Empties the list (a stop): the entries, oldest first. */
  clear(): Array<{ item: T; destination: string }> {
    const all = [...this.#byKey.values()]
      .sort((a, b) => a.seq - b.seq)
      .map((w) => ({ item: w.item, destination: w.destination }));
    this.#byKey.clear();
    this.#fifos.clear();
    this.#bytes = 0;
    return all;
  }

  /** The oldest key still waiting for `destination`, with its entry; drops deleted keys met. */
  #head(destination: string): [string, Waiting<T>] | undefined {
    const fifo = this.#fifos.get(destination)!;
    for (let key = fifo.peek(); key !== undefined; key = fifo.peek()) {
      const w = this.#byKey.get(key);
      if (w) return [key, w];
      fifo.shift();
    }
    this.#fifos.delete(destination);
    return undefined;
  }

  #forget(key: string, w: Waiting<T>): void {
    this.#byKey.delete(key);
    this.#bytes -= w.bytes;
    const fifo = this.#fifos.get(w.destination);
    if (fifo?.peek() === key) fifo.shift();
    if (fifo?.length === 0) this.#fifos.delete(w.destination);
  }
}

/** A first-in first-out array that does not move its elements on each shift. */
class Fifo<T> {
  #items: Array<T | undefined> = [];
  #head = 0;

  /** Elements still in, deleted keys included (they are skipped when met at the head). */
  get length(): number {
    return this.#items.length - this.#head;
  }

  push(item: T): void {
    this.#items.push(item);
  }

  peek(): T | undefined {
    return this.#items[this.#head];
  }

  shift(): void {
    this.#items[this.#head] = undefined;
    this.#head += 1;
    // Compact once the consumed half dominates: amortised O(1) per element.
    if (this.#head > 1024 && this.#head * 2 > this.#items.length) {
      this.#items = this.#items.slice(this.#head);
      this.#head = 0;
    }
  }
}
