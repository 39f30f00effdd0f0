/**
 * Items arriving from a socket (reply lines, parsed replies), taken one at a time with a deadline:
 * waits for an arrival or the close, never sleeps a fixed time.
 */
export class DeadlineQueue<T> {
  readonly #items: T[] = [];
  #waiters: Array<() => void> = [];
  #closed = false;

  get closed(): boolean {
    return this.#closed;
  }

  get length(): number {
    return this.#items.length;
  }

  push(...items: T[]): void {
    this.#items.push(...items);
    this.#wake();
  }

  close(): void {
    this.#closed = true;
    this.#wake();
  }

  /** Items received and not taken yet. */
  snapshot(): T[] {
    return [...this.#items];
  }

  /** The next item; throws when the connection closed first or the deadline passed. */
  async shift(timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    while (this.#items.length === 0) {
      if (this.#closed) throw new Error(`connection closed before a ${what}`);
      if (!(await this.#arrival(deadline))) throw new Error(`no ${what} within the deadline`);
    }
    return this.#items.shift()!;
  }

  /** Every item until the connection closes; throws, with what came, if it is still open at the deadline. */
  async untilClosed(timeoutMs: number): Promise<T[]> {
    const deadline = Date.now() + timeoutMs;
    const out: T[] = [];
    for (;;) {
      out.push(...this.#items.splice(0));
      if (this.#closed) return out;
      if (!(await this.#arrival(deadline)))
        throw new Error(`connection still open; read ${JSON.stringify(out)}`);
    }
  }

  /** Waits for an arrival or the close; false once the deadline has passed. */
  async #arrival(deadline: number): Promise<boolean> {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, left);
      this.#waiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return true;
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    waiters.forEach((w) => w());
  }
}
