import type { Logger } from '../observability/index.js';
import type { IndicatorRecorder, MessageIndicator } from './indicator-recorder.js';

export interface IndicatorBufferOptions {
  readonly recorder: Pick<IndicatorRecorder, 'recordMessages'>;
  readonly logger: Logger;
  /** How often what was counted is written (default 1 s). */
  readonly intervalMs?: number;
}

/** Events kept at most while Redis does not take them; past it new ones are dropped (counted, logged once a flush). */
const MAX_PENDING = 100_000;

/**
 * The message indicators of submissions and deliveries, summed in memory and written once a second
 * in one round trip (IndicatorRecorder.recordMessages), rather than one script per message on the
 * delivery path. They are usage statistics reported monthly to the agency, not an audit record (the
 * audit journal keeps every delivery durably, apart from this): a crash loses at most the last
 * second of counts, a stop writes them first.
 */
export class IndicatorBuffer {
  readonly #d: IndicatorBufferOptions;
  #pending: Array<{ event: MessageIndicator; at: Date }> = [];
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> | undefined;
  /** Counts dropped since the last flush, the buffer being full (logged once by the next flush). */
  #dropped = 0;

  constructor(options: IndicatorBufferOptions) {
    this.#d = options;
  }

  /** Counts one message; written at the next flush. */
  add(event: MessageIndicator, at: Date): void {
    // Full only while a flush hangs (Redis retrying): O(1) per message and no log line each.
    if (this.#pending.length >= MAX_PENDING) this.#dropped += 1;
    else this.#pending.push({ event, at });
    this.#timer ??= setTimeout(() => {
      this.#timer = undefined;
      void this.flush();
    }, this.#d.intervalMs ?? 1000).unref();
  }

  /** Writes what is pending; one write at a time, errors logged (the counts are then lost). */
  async flush(): Promise<void> {
    while (this.#flushing) await this.#flushing;
    if (this.#dropped > 0) {
      this.#d.logger.warn(
        { event: 'lifecycle.indicator_dropped', count: this.#dropped },
        'indicator buffer full; message counts dropped',
      );
      this.#dropped = 0;
    }
    if (this.#pending.length === 0) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#flushing = this.#d.recorder
      .recordMessages(batch)
      .catch((err: unknown) =>
        this.#d.logger.warn(
          {
            event: 'lifecycle.indicator_failed',
            what: 'messages',
            count: batch.length,
            err: (err as Error).message,
          },
          'message indicators not recorded',
        ),
      )
      .finally(() => (this.#flushing = undefined));
    await this.#flushing;
  }

  /** Writes what is pending (before Redis closes). */
  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.flush();
  }
}
