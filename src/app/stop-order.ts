import type { Logger } from '../observability/index.js';

/**
 * Parts in the order they were built; stopAll() stops them in reverse, each step on its own (a step
 * that fails is logged and the others still run), so that a start that fails half-way stops what it
 * had started.
 */
export class StopOrder {
  readonly #steps: Array<{ readonly name: string; readonly stop: () => unknown; readonly redis: boolean }> =
    [];
  readonly #logger: Logger;

  constructor(logger: Logger) {
    this.#logger = logger;
  }

  /**
   * Registers a part to stop; returns it. `redis`: its stop needs Redis (BullMQ workers, queues,
   * subscribers), so it may be abandoned (see stopAll).
   */
  add<P extends { stop(): unknown }>(name: string, part: P, options: { readonly redis?: boolean } = {}): P {
    this.#steps.push({ name, stop: () => part.stop(), redis: options.redis ?? false });
    return part;
  }

  /**
   * Stops every part. Once `abandonRedis` settles (Redis unreachable, or the drain deadline past), a
   * step that needs Redis is no longer waited for: its closing commands wait for a Redis that is not
   * coming back (BullMQ retries connection errors forever). Nothing acknowledged depends on them,
   * accepted messages being in the spool that the next start reads; the other steps (listeners,
   * Dovecot, the embedded Redis, the journal) still stop in order.
   */
  async stopAll(abandonRedis?: Promise<string>): Promise<void> {
    for (const { name, stop, redis } of this.#steps.splice(0).reverse()) {
      try {
        const stopped = Promise.resolve().then(stop);
        if (!redis || !abandonRedis) {
          await stopped;
          continue;
        }
        stopped.catch(() => undefined); // an abandoned step's late failure changes nothing
        const abandoned = await Promise.race([stopped.then(() => undefined), abandonRedis]);
        if (abandoned !== undefined)
          this.#logger.warn(
            { event: 'gateway.stop.abandoned', step: name, reason: abandoned },
            'stop step waits for Redis: not waited for',
          );
      } catch (err) {
        this.#logger.error(
          { event: 'gateway.stop_failed', step: name, err: (err as Error).message },
          'stop step failed',
        );
      }
    }
  }
}
