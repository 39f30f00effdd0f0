import { open } from 'node:fs/promises';
import type { Clock } from '../shared/index.js';
import { type DestinationState, type SpoolEnvelope, scanHeaders } from '../delivery/index.js';
import type { Logger } from '../observability/index.js';
import type { ActivityChannel } from '../registry/index.js';
import { PATIENT_DOMAIN } from '../routing/index.js';
import type { IndicatorRecorder } from './indicator-recorder.js';
import type { LifecycleActivity } from './lifecycle-activity.js';

export interface LifecycleEventsDeps {
  readonly indicators: IndicatorRecorder;
  readonly activity: LifecycleActivity;
  /** Where a spooled message's bytes are, to read its headers. */
  readonly spool: { messagePath(id: string): string };
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Headers the indicators count, read from the top of a spooled message. */
interface IndicatorHeaders {
  readonly hasCda: boolean;
  readonly nil?: string;
  readonly kind: 'message' | 'dsn' | 'mdn';
}

/** The header section is read from the first 64 KiB, as the SMTP listeners capture it. */
const HEAD_BYTES = 64 * 1024;

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
    void this.#headers(envelope)
      .then((h) =>
        this.#d.indicators.recordMessage(
          {
            bal: envelope.mailFrom.toLowerCase(),
            direction: 'sent',
            interOperator: envelope.recipients.some((r) => r.route === 'relay'),
            toPatient: envelope.recipients.some((r) =>
              r.address.toLowerCase().endsWith(`@${PATIENT_DOMAIN}`),
            ),
            ...h,
          },
          new Date(envelope.receivedAt),
        ),
      )
      .catch((err: unknown) => this.#failed('sent', err));
  }

  /** A settled message: one `received` per mailbox of ours it was delivered to. */
  onSettled(envelope: SpoolEnvelope, states: readonly DestinationState[]): void {
    const local = states.find((s) => s.destination === 'local');
    const delivered = local?.recipients.filter((r) => r.state === 'delivered') ?? [];
    if (delivered.length === 0) return;
    void (async () => {
      const h = await this.#headers(envelope);
      for (const r of delivered)
        await this.#d.indicators.recordMessage(
          {
            bal: r.address.toLowerCase(),
            direction: 'received',
            interOperator: envelope.channel === 'mx',
            toPatient: false,
            ...h,
          },
          this.#d.clock.now(),
        );
    })().catch((err: unknown) => this.#failed('received', err));
  }

  async #headers(envelope: SpoolEnvelope): Promise<IndicatorHeaders> {
    const fh = await open(this.#d.spool.messagePath(envelope.id), 'r').catch(() => undefined);
    if (!fh) return { hasCda: false, kind: 'message' };
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      const { bytesRead } = await fh.read(buf, 0, HEAD_BYTES, 0);
      const headers = scanHeaders(buf.subarray(0, bytesRead));
      // RFC 6522 multipart/report: a DSN (RFC 3464, null reverse-path) or an MDN (RFC 8098).
      const reportType = /report-type\s*=\s*"?([a-z-]+)/i
        .exec(headers.value('Content-Type') ?? '')?.[1]
        ?.toLowerCase();
      const kind =
        envelope.mailFrom === '' && reportType === 'delivery-status'
          ? 'dsn'
          : reportType === 'disposition-notification'
            ? 'mdn'
            : 'message';
      const nil = headers.value('X-MSS-NIL');
      return { hasCda: headers.value('X-MSS-CODECDA') !== undefined, ...(nil ? { nil } : {}), kind };
    } finally {
      await fh.close();
    }
  }

  #failed(what: string, err: unknown): void {
    this.#d.logger.warn(
      { event: 'lifecycle.indicator_failed', what, err: (err as Error).message },
      'indicator or lifecycle step failed',
    );
  }
}
