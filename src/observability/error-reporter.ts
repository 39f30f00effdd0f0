import type { Logger } from './logger.js';

/** Anything that emits 'error': an ioredis client, a BullMQ Queue, Worker or QueueEvents. */
export interface ErrorEmitter {
  on(event: 'error', listener: (err: Error) => void): unknown;
}

/**
 * Sends an emitter's errors to the logger as one JSON line each, at most one per distinct message
 * every 30 s (a client reports every failed reconnection). Without a listener, BullMQ prints the
 * error's stack on stderr, in the middle of the JSON log (issue #11 item 8).
 */
export function reportErrors(emitter: ErrorEmitter, logger: Logger, fields: Record<string, unknown>): void {
  let last = '';
  let lastAt = 0;
  emitter.on('error', (err: Error) => {
    const now = Date.now();
    // Log de-duplication only: repeating the same line is what is avoided, nothing is decided.
    // eslint-disable-next-line no-restricted-syntax
    if (err.message === last && now - lastAt < 30_000) return;
    last = err.message;
    lastAt = now;
    logger.warn({ event: 'redis.client.error', ...fields, err: err.message }, 'redis client error');
  });
}
