import { open } from 'node:fs/promises';
import type { Redis } from 'ioredis';
import type { Clock } from './shared/index.js';
import type { Config } from './config/index.js';
import type { DeliveryQueue, DestinationState, Spool, SpoolEnvelope } from './delivery/index.js';
import {
  IndicatorRecorder,
  LifecycleActivity,
  type LifecyclePublisher,
  LifecycleRunner,
  LifecycleScheduler,
  type PublicationStateReader,
  lifecycleMetricsObserver,
} from './lifecycle/index.js';
import type { AuditJournal, Logger, Metrics } from './observability/index.js';
import type { PublicationService } from './publication/index.js';
import { ActivityStore, type ActivityChannel, type BalRegistry } from './registry/index.js';
import { PATIENT_DOMAIN } from './routing/index.js';

export interface LifecycleWiringDeps {
  readonly config: Config;
  readonly redis: Redis;
  readonly connect: (name: string) => Redis;
  readonly registry: BalRegistry;
  readonly publication: PublicationService | undefined;
  readonly delivery: DeliveryQueue;
  readonly spool: Spool;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** Removes the mail of a deleted mailbox once its retention is over. */
  readonly mailPurger: { purge(address: string): Promise<void> };
}

/** Headers the indicators count, read from the top of a spooled message. */
interface IndicatorHeaders {
  readonly hasCda: boolean;
  readonly nil?: string;
  readonly kind: 'message' | 'dsn' | 'mdn';
}

const HEAD_BYTES = 64 * 1024;

/**
 * Issue #6 wired to the rest of the gateway: the daily lifecycle job (through the publication
 * service when enabled; with publication off no state is known, so nothing is warned or
 * unpublished), the prompt republication on a mailbox's first use, and the indicators of every
 * login, submission and local delivery.
 */
export class LifecycleWiring {
  readonly indicators: IndicatorRecorder;
  readonly activity: LifecycleActivity;
  readonly scheduler: LifecycleScheduler;
  readonly #d: LifecycleWiringDeps;
  readonly #connection: Redis;

  constructor(d: LifecycleWiringDeps) {
    this.#d = d;
    const lc = d.config.lifecycle;
    const prefix = d.config.redis.prefix;
    const observer = lifecycleMetricsObserver(d.metrics);
    const publication = d.publication;
    const publisher: LifecyclePublisher = {
      unpublishInactive: async (address) => {
        if (!publication) return { ok: false, response: 'publication disabled' };
        const s = await publication.unpublish(address, 'inactive');
        return { ok: true, response: `queued (${s.state})` };
      },
      republish: async (address) => {
        if (!publication) return { ok: false, response: 'publication disabled' };
        const s = await publication.republish(address, 'inactive');
        return {
          ok: s.state === 'published' || s.target === 'published',
          response: `${s.state}${s.reason ? ` (${s.reason})` : ''}`,
        };
      },
    };
    const states: PublicationStateReader = {
      statesOf: async (bals) => {
        if (!publication) return bals.map(() => undefined);
        const found = await publication.statesOf(bals.map((b) => b.address));
        // Not `since`: it moves at each metadata republication and would restart inactivity periods.
        return found.map((s) => (s ? { state: s.state, redListed: s.reason === 'red-list' } : undefined));
      },
    };
    this.indicators = new IndicatorRecorder({
      redis: d.redis,
      prefix,
      timeZone: lc.timeZone,
      retentionDays: lc.indicatorsRetentionDays,
      maxSoftwarePerDay: lc.maxSoftwarePerDay,
    });
    this.activity = new LifecycleActivity({
      redis: d.redis,
      prefix,
      indicators: this.indicators,
      publisher,
      journal: d.journal,
      logger: d.logger,
      observer,
    });
    const runner = new LifecycleRunner({
      redis: d.redis,
      prefix,
      config: lc,
      registry: d.registry,
      activity: ActivityStore.withPrefix(d.redis, prefix),
      publication: states,
      publisher,
      warnings: {
        // Into the mailbox itself, where the owner and co-managers read it.
        deliver: async (address, raw) => {
          await d.delivery.inject({ from: '', to: address, route: 'local', raw });
        },
      },
      mailPurger: d.mailPurger,
      clock: d.clock,
      journal: d.journal,
      logger: d.logger,
      observer,
    });
    this.#connection = d.connect('lifecycle');
    this.scheduler = new LifecycleScheduler({
      connection: this.#connection,
      bullPrefix: `${prefix}bull`,
      config: lc,
      runner,
      logger: d.logger,
    });
  }

  /** Stops the daily job's worker and closes its connection. */
  async stop(): Promise<void> {
    await this.scheduler.stop();
    await this.#connection.quit().catch(() => this.#connection.disconnect());
  }

  /** A successful login or submission: indicators, and republication of a returning mailbox. */
  onActivity(address: string, channel: ActivityChannel, at: Date): void {
    this.activity.onActivity(address, channel, at).catch((err: unknown) => this.#failed('activity', err));
  }

  /** An accepted submission: one `sent` for the sending mailbox. */
  onSubmitted(envelope: SpoolEnvelope): void {
    void this.#headers(envelope)
      .then((h) =>
        this.indicators.recordMessage(
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
        await this.indicators.recordMessage(
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
      const text = buf.subarray(0, bytesRead).toString('latin1');
      const end = text.search(/\r?\n\r?\n/);
      const head = (end < 0 ? text : text.slice(0, end)).replace(/\r?\n[ \t]+/g, ' ');
      const header = (name: string) => new RegExp(`^${name}:[ \\t]*(.*)$`, 'im').exec(head)?.[1]?.trim();
      const reportType = /report-type\s*=\s*"?([a-z-]+)/i
        .exec(header('Content-Type') ?? '')?.[1]
        ?.toLowerCase();
      const kind =
        envelope.mailFrom === '' && reportType === 'delivery-status'
          ? 'dsn'
          : reportType === 'disposition-notification'
            ? 'mdn'
            : 'message';
      const nil = header('X-MSS-NIL');
      return { hasCda: header('X-MSS-CODECDA') !== undefined, ...(nil ? { nil } : {}), kind };
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
