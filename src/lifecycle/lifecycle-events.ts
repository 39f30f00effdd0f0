import type { Clock } from '../shared/index.js';
import type { DestinationState, SpoolEnvelope } from '../delivery/index.js';
import type { Logger } from '../observability/index.js';
import type { ActivityChannel } from '../registry/index.js';
import { PATIENT_DOMAIN } from '../routing/index.js';
import type { IndicatorBuffer } from './indicator-buffer.js';
import type { LifecycleActivity } from './lifecycle-activity.js';

export interface LifecycleEventsDeps {
  /** Message counts, written once a second (sent and received are statistics, not audit). */
  readonly indicators: Pick<IndicatorBuffer, 'add'>;
  readonly activity: LifecycleActivity;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** What the indicators count of a message's headers. */
interface CountedHeaders {
  readonly hasCda: boolean;
  readonly cda?: string;
  readonly ins?: string;
  readonly mes?: string;
  readonly nil?: string;
  readonly kind: 'message' | 'dsn' | 'mdn';
}

/**
 * From the headers captured at receipt and kept in the envelope (smtp/ spool-incoming, delivery/
 * inject): the message may have left the spool by the time it is counted, and is never read again.
 * RFC 6522 multipart/report: a DSN (RFC 3464, null reverse-path) or an MDN (RFC 8098).
 */
function countedHeaders(envelope: SpoolEnvelope): CountedHeaders {
  const h = envelope.headers ?? {};
  const kind =
    envelope.mailFrom === '' && h.reportType === 'delivery-status'
      ? 'dsn'
      : h.reportType === 'disposition-notification'
        ? 'mdn'
        : 'message';
  return {
    hasCda: h.cda !== undefined,
    ...(h.cda ? { cda: h.cda } : {}),
    ...(h.ins ? { ins: h.ins } : {}),
    ...(h.mes ? { mes: h.mes } : {}),
    ...(h.nil ? { nil: h.nil } : {}),
    kind,
  };
}

/**
 * What the rest of the gateway tells the lifecycle (issue #6): every login, submission and local
 * delivery feeds the indicators, and a login or submission republishes a returning mailbox. None of
 * it may fail the caller's operation: a failure is logged.
 */
export class LifecycleEvents {
  readonly #d: LifecycleEventsDeps;

  constructor(d: LifecycleEventsDeps) {
    this.#d = d;
  }

  /** A successful login or submission: indicators, and republication of a returning mailbox. */
  onActivity(address: string, channel: ActivityChannel, at: Date): void {
    this.#d.activity.onActivity(address, channel, at).catch((err: unknown) => this.#failed('activity', err));
  }

  /** An accepted submission: one `sent` for the sending mailbox. */
  onSubmitted(envelope: SpoolEnvelope): void {
    this.#d.indicators.add(
      {
        bal: envelope.mailFrom.toLowerCase(),
        direction: 'sent',
        interOperator: envelope.recipients.some((r) => r.route === 'relay'),
        toPatient: envelope.recipients.some((r) => r.address.toLowerCase().endsWith(`@${PATIENT_DOMAIN}`)),
        ...countedHeaders(envelope),
      },
      new Date(envelope.receivedAt),
    );
  }

  /** A settled message: one `received` per mailbox of ours it was delivered to. */
  onSettled(envelope: SpoolEnvelope, states: readonly DestinationState[]): void {
    const local = states.find((s) => s.destination === 'local');
    const delivered = local?.recipients.filter((r) => r.state === 'delivered') ?? [];
    if (delivered.length === 0) return;
    const h = countedHeaders(envelope);
    const at = this.#d.clock.now();
    for (const r of delivered)
      this.#d.indicators.add(
        {
          bal: r.address.toLowerCase(),
          direction: 'received',
          interOperator: envelope.channel === 'mx',
          toPatient: false,
          ...h,
        },
        at,
      );
  }

  #failed(what: string, err: unknown): void {
    this.#d.logger.warn(
      { event: 'lifecycle.indicator_failed', what, err: (err as Error).message },
      'indicator or lifecycle step failed',
    );
  }
}
