import type { Redis } from 'ioredis';
import { toGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import { type ActivityChannel } from '../registry/index.js';
import type { IndicatorRecorder } from './indicator-recorder.js';
import { LifecycleKeys } from './lifecycle-keys.js';
import type {
  CallOutcome,
  DirectoryAnswer,
  LifecycleObserver,
  LifecyclePublisher,
} from './lifecycle-ports.js';
import { addressKey } from '../shared/index.js';

/** What a use of a mailbox led to, beyond the counters. */
export type ReturnOutcome = 'none' | 'republished' | 'refused' | 'error';

export interface LifecycleActivityOptions {
  readonly redis: Redis;
  /** Configuration `redis.prefix`. */
  readonly prefix: string;
  readonly indicators: IndicatorRecorder;
  readonly publisher: Pick<LifecyclePublisher, 'republish'>;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly observer?: LifecycleObserver;
}

/**
 * The lifecycle's side of each use of a mailbox (successful login or submission), called next to the
 * registry's activity record. One round trip on the hot path: an atomic script bumps the day's
 * counters and takes the mailbox out of the set of mailboxes unpublished for inactivity. Only the
 * caller that took it out asks the publication module for republication, at once (issue #6: "the
 * first activity on an unpublished-inactive BAL republishes it promptly, not at the next daily run").
 * A mailbox unpublished for any other reason (red list, suspension) is never in that set, and the
 * publisher refuses to republish it anyway.
 */
export class LifecycleActivity {
  readonly #o: LifecycleActivityOptions;
  readonly #keys: LifecycleKeys;

  constructor(options: LifecycleActivityOptions) {
    this.#o = options;
    this.#keys = new LifecycleKeys(options.prefix);
  }

  async onActivity(address: string, channel: ActivityChannel, at: Date): Promise<ReturnOutcome> {
    const bal = addressKey(address);
    const returned = await this.#o.indicators.recordActivityClaiming(
      bal,
      channel,
      at,
      this.#keys.unpublishedInactive,
    );
    if (!returned) return 'none';
    return this.#republish(bal, channel);
  }

  async #republish(address: string, channel: ActivityChannel): Promise<ReturnOutcome> {
    const { journal, logger, observer } = this.#o;
    let answer: DirectoryAnswer;
    let outcome: CallOutcome;
    try {
      answer = await this.#o.publisher.republish(address);
      outcome = answer.ok ? 'ok' : 'refused';
    } catch (err) {
      answer = { ok: false, response: toGatewayError(err).message };
      outcome = 'error';
    }
    observer?.republication(outcome);
    if (outcome === 'ok') {
      journal.record({
        event: 'lifecycle.republished',
        address,
        channel,
        directoryResponse: answer.response,
      });
      logger.info({ event: 'lifecycle.republished', address, channel }, 'mailbox used again: republished');
      return 'republished';
    }
    if (outcome === 'error') {
      // Flag it again so that the next use (or login) tries once more.
      await this.#o.redis.sadd(this.#keys.unpublishedInactive, address).catch(() => undefined);
    }
    journal.record({
      event: 'lifecycle.republication.failed',
      address,
      channel,
      outcome,
      directoryResponse: answer.response,
    });
    logger.warn(
      { event: 'lifecycle.republication.failed', address, outcome, response: answer.response },
      'mailbox used again but not republished',
    );
    return outcome === 'refused' ? 'refused' : 'error';
  }
}
