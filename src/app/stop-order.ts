import type { Logger } from '../observability/index.js';

/**
 * Parts in the order they were built; stopAll() stops them in reverse, each step on its own (a step
 * that fails is logged and the others still run), so that a start that fails half-way stops what it
 * had started.
 */
export class StopOrder {
  readonly #steps: Array<{ readonly name: string; readonly stop: () => unknown }> = [];
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /** Registers a part to stop; returns it. */
  add<P extends { stop(): unknown }>(name: string, part: P): P {
    this.#steps.push({ name, stop: () => part.stop() });
    return part;
  }

  async stopAll(): Promise<void> {
    for (const { name, stop } of this.#steps.splice(0).reverse()) {
      try {
        await stop();
      } catch (err) {
        this.#logger.error(
          { event: 'gateway.stop_failed', step: name, err: (err as Error).message },
          'stop step failed',
        );
      }
    }
  }
}
