import { Readable } from 'node:stream';
import type { Clock } from '../shared/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { DsnAction, DsnPolicy } from './dsn-wanted.js';
import { buildDsn, type DsnRecipientReport } from './dsn.js';
import type { Spool } from './spool.js';
import type { DestinationRecipient, DestinationState, SpoolEnvelope } from './spool-entry.js';

/** Where a message the gateway writes itself goes: our store, another operator, or nowhere. */
export type GeneratedRoute = 'local' | 'relay' | undefined;

export interface GeneratedMessage {
  /** Envelope sender; empty for the null reverse-path (DSNs, RFC 3461 §6.2). */
  readonly from: string;
  readonly to: string;
  readonly route: 'local' | 'relay';
  readonly raw: Buffer;
  readonly messageId?: string;
}

export interface DsnNotifierDeps {
  readonly spool: Spool;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  /** `Reporting-MTA` of the DSNs. */
  readonly hostname: string;
  /** The DSNs' From: address (delivery.dsnFrom, else MAILER-DAEMON at our first domain). */
  readonly from: string;
  readonly policy: DsnPolicy & { readonly maxAgeHours: number };
  /** Where the original sender's mail goes (our domain, a whitelisted one, or nowhere). */
  readonly routeOf: (address: string) => GeneratedRoute;
  /** Commits a generated message to the spool and queues it. */
  readonly inject: (message: GeneratedMessage) => Promise<SpoolEnvelope>;
  readonly onSent?: (action: DsnAction) => void;
}

/**
 * Turns final and delayed outcomes into DSNs (RFC 3464) for the envelope sender and spools them
 * like any message, so they get the same durability and retries. Never for a null sender (buildDsn
 * returns nothing), never for a recipient whose NOTIFY excludes it.
 */
export class DsnNotifier {
  readonly #d: DsnNotifierDeps;

  constructor(deps: DsnNotifierDeps) {
    this.#d = deps;
  }

  /** Sends one DSN of `action` about `recipients`; returns whether one was spooled. */
  async notify(
    action: DsnAction,
    envelope: SpoolEnvelope,
    state: DestinationState,
    recipients: readonly DestinationRecipient[],
  ): Promise<boolean> {
    if (recipients.length === 0 || envelope.mailFrom === '') return false;
    const now = this.#d.clock.now();
    const until = new Date(Date.parse(envelope.receivedAt) + this.#d.policy.maxAgeHours * 3_600_000);
    const reports: DsnRecipientReport[] = recipients.map((r) => ({
      recipient: { address: r.address, ...(r.dsn ? { dsn: r.dsn } : {}) },
      status: statusFor(action, r.status),
      ...(r.lastResult ? { diagnostic: r.lastResult } : {}),
      ...(state.remote?.host ? { remoteMta: state.remote.host } : {}),
      ...(state.lastAttemptAt ? { lastAttemptAt: new Date(state.lastAttemptAt) } : {}),
      ...(action === 'delayed' ? { willRetryUntil: until } : {}),
    }));
    const built = buildDsn({
      action,
      envelope,
      recipients: reports,
      hostname: this.#d.hostname,
      from: this.#d.from,
      // Read only when a DSN is really built (NOTIFY and the null sender are checked first).
      original: () => this.#d.spool.readMessageSync(envelope.id),
      date: now,
      policy: this.#d.policy,
    });
    if (!built) return false;
    const route = this.#d.routeOf(envelope.mailFrom);
    const about = {
      spoolId: envelope.id,
      messageId: envelope.messageId,
      action,
      sender: envelope.mailFrom,
      recipients: built.recipients,
    };
    if (route === undefined) {
      // A sender we cannot reach (not ours, not in the trust space): keep the trace, send nothing.
      this.#d.journal.record({ event: 'dsn.undeliverable', ...about });
      return false;
    }
    const dsn = await this.#d.inject({ from: '', to: built.envelope.to, route, raw: built.raw });
    this.#d.journal.record({ event: 'dsn.sent', ...about, dsnSpoolId: dsn.id });
    this.#d.logger.info(
      { event: 'dsn.sent', spoolId: envelope.id, action, dsnSpoolId: dsn.id },
      'DSN queued',
    );
    this.#d.onSent?.(action);
    return true;
  }
}

/** A status of the right class for the action (RFC 3464 §2.3.4): delayed is 4.x.x, delivered 2.x.x. */
function statusFor(action: DsnAction, status: string | undefined): string {
  const detail = status?.slice(2) ?? '0.0';
  if (action === 'delivered') return '2.0.0';
  if (action === 'delayed') return `4.${detail}`;
  return status?.startsWith('4') || status?.startsWith('5') ? status : `5.${detail}`;
}

/** A generated message as a spool body: the bytes, nothing to prepend. */
export function bodyOf(raw: Buffer): Readable {
  return Readable.from([raw]);
}
