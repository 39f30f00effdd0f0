import type { Clock } from '../shared/index.js';
import type { Logger } from '../observability/index.js';
import type { BalChange, BalObserver } from '../registry/index.js';
import { COUNTED_BAL_CHANGES, type CountedBalChange, type IndicatorRecorder } from './indicator-recorder.js';

export interface BalChangeIndicatorsDeps {
  readonly indicators: IndicatorRecorder;
  readonly clock: Clock;
  readonly logger: Logger;
  /** The observer that was there before (the publication service), told first. */
  readonly next?: BalObserver;
}

/**
 * Counts the mailboxes created, suspended and deleted (MSSANTE.md "Lifecycle and indicators": BALs
 * created/suspended/deleted) on the day of the committed change, into the mailbox's daily
 * indicators, from the registry's observer: every change goes through the registry, whichever API or
 * command made it. Never throws: the change is committed; a failure to count is logged.
 */
export function balChangeIndicators(d: BalChangeIndicatorsDeps): BalObserver {
  return {
    async balChanged(change: BalChange): Promise<void> {
      await d.next?.balChanged(change);
      if (!(COUNTED_BAL_CHANGES as readonly string[]).includes(change.kind)) return;
      try {
        await d.indicators.recordBalChange(
          change.bal.address,
          change.kind as CountedBalChange,
          d.clock.now(),
        );
      } catch (err) {
        d.logger.warn(
          { event: 'lifecycle.indicator_failed', what: `bal.${change.kind}`, err: (err as Error).message },
          'indicator or lifecycle step failed',
        );
      }
    },
  };
}
