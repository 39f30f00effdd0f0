/**
 * How long each step of a start took, in milliseconds: logged with `gateway.ready` (so an operator
 * sees where a slow start went) and read by `npm run bench -- startup`. Steps run side by side
 * each have their own duration.
 */
export class StartTimings {
  readonly #ms: Record<string, number> = {};
  #mark = performance.now();

  /** Runs `work`, recording its duration as `step`. */
  async time<T>(step: string, work: () => Promise<T>): Promise<T> {
    const began = performance.now();
    try {
      return await work();
    } finally {
      this.#ms[step] = Math.round(performance.now() - began);
    }
  }

  /** Records as `step` the time since the previous lap (or since this was built). */
  lap(step: string): void {
    const now = performance.now();
    this.#ms[step] = Math.round(now - this.#mark);
    this.#mark = now;
  }

  /** The durations recorded so far, by step. */
  steps(): Readonly<Record<string, number>> {
    return { ...this.#ms };
  }
}
