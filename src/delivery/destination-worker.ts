import type { Clock } from '../shared/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import {
  type RetryPolicy,
  applyAttempt,
  delayNoticeDue,
  destinationsOf,
  expireIfDue,
  initialState,
  pendingOf,
  retryDelayMs,
} from './delivery-plan.js';
import type { DestinationTransport } from './destination-transport.js';
import type { DsnNotifier } from './dsn-notifier.js';
import type { Spool } from './spool.js';
import {
  type DestinationRecipient,
  type DestinationState,
  LOCAL_DESTINATION,
  type SpoolEnvelope,
} from './spool-entry.js';

export interface DeliveryObserver {
  /** One recipient's attempt: `kind` local or relay, `reason` a bounded label. */
  attempt(kind: 'local' | 'relay', outcome: 'delivered' | 'temporary' | 'permanent', reason: string): void;
  /** A recipient delivered, seconds after acceptance. */
  delivered(kind: 'local' | 'relay', latencySeconds: number): void;
  /** A relay recipient's final outcome; `patient` for Mon espace santé mailboxes. */
  finalRelay(outcome: 'delivered' | 'failed', patient: boolean): void;
}

export interface DestinationWorkerDeps {
  readonly spool: Spool;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly policy: RetryPolicy;
  readonly local: DestinationTransport;
  readonly relay: DestinationTransport;
  readonly notifier: DsnNotifier;
  readonly observer?: DeliveryObserver;
  readonly random?: () => number;
  /** Called once every destination of a message is final and the spool entry is gone. */
  readonly onSettled?: (envelope: SpoolEnvelope, states: readonly DestinationState[]) => void;
  readonly onDeferred?: (envelope: SpoolEnvelope, state: DestinationState) => void;
}

export type WorkOutcome =
  { readonly kind: 'done' } | { readonly kind: 'retry'; readonly at: Date; readonly state: DestinationState };

const PATIENT_DOMAIN = 'patient.mssante.fr';

/**
 * Works one job: one destination of one spooled message. Reads the destination's state from the
 * spool (the truth; the queue only schedules), attempts the pending recipients, records the
 * outcome durably before anything else, then sends the notifications the outcome calls for and
 * settles the message once every destination is final. Safe to run again after a crash at any
 * point: a recipient recorded as delivered is never attempted again.
 */
export class DestinationWorker {
  readonly #d: DestinationWorkerDeps;
  /**
   * Jobs being worked in this process. A job taken again meanwhile (its safety net came due during a
   * long attempt, or its lock was lost) waits for that attempt and reports its outcome: it never
   * starts a second attempt, nor one before the retry time the first one set.
   */
  readonly #inFlight = new Map<string, Promise<WorkOutcome>>();

  constructor(deps: DestinationWorkerDeps) {
    this.#d = deps;
  }

  async work(spoolId: string, destination: string): Promise<WorkOutcome> {
    const key = `${spoolId}~${destination}`;
    const running = this.#inFlight.get(key);
    if (running) return running;
    const run = this.#work(spoolId, destination).finally(() => this.#inFlight.delete(key));
    this.#inFlight.set(key, run);
    return run;
  }

  async #work(spoolId: string, destination: string): Promise<WorkOutcome> {
    const envelope = await this.#d.spool.readEnvelope(spoolId);
    if (!envelope) return { kind: 'done' }; // settled already (by another run, or deleted)
    const state =
      (await this.#d.spool.readState(spoolId, destination)) ?? initialState(envelope, destination);
    if (!state.final) {
      const next = await this.#attempt(envelope, state);
      if (next) return { kind: 'retry', at: next, state };
    }
    await this.settleIfFinished(envelope, state);
    return { kind: 'done' };
  }

  /** Attempts the pending recipients; returns when to try again, or undefined once final. */
  async #attempt(envelope: SpoolEnvelope, state: DestinationState): Promise<Date | undefined> {
    const { spool, clock } = this.#d;
    const kind = state.destination === LOCAL_DESTINATION ? 'local' : 'relay';
    const pending = pendingOf(state);
    if (pending.length > 0) {
      const transport = kind === 'local' ? this.#d.local : this.#d.relay;
      // Exactly once into our store: unless this process committed the entry and never attempted
      // it, an earlier attempt may have reached the store without our record of it.
      const verify = kind === 'local' && !spool.takeFresh(envelope.id);
      const attempt = await transport.attempt(state.destination, {
        envelope,
        recipients: pending,
        message: () => spool.openMessage(envelope.id),
        verify,
      });
      // The store answered each recipient for itself, or the connection failed before the final dot
      // (nothing can have been delivered): the next attempt need not ask first. A connection lost
      // after the final dot (outcome unknown) or a check that could not be made leaves the doubt.
      const doubt =
        (verify && attempt.reason === 'store_unreachable') ||
        attempt.results.some((r) => r.outcome !== 'delivered' && r.outcomeUnknown === true);
      // Only while nothing reached the store: once a recipient was delivered, its record is the
      // state file written below, and if that write fails (a full disk) the next attempt must ask
      // the store first rather than deliver again.
      const deliveredNow = attempt.results.some((r) => r.outcome === 'delivered');
      if (kind === 'local' && !doubt && !deliveredNow) spool.markFresh(envelope.id);
      const now = clock.now();
      const applied = applyAttempt(state, attempt.results, now);
      if (attempt.remote) state.remote = { ...attempt.remote };
      if (attempt.remoteDsn !== undefined) state.remoteDsn = attempt.remoteDsn;
      this.#report(kind, envelope, state, applied, attempt.reason, now);
    }
    const now = clock.now();
    const expired = expireIfDue(state, envelope.receivedAt, this.#d.policy, now);
    for (const r of expired) this.#journal(kind, 'expired', envelope, state, r);
    const finished = pendingOf(state).length === 0;
    if (finished && this.#quietEnd(envelope, state)) {
      // Every recipient delivered, nothing to notify, no other destination: removing the spool
      // entry (settleIfFinished, next) is the durable record, as a state file would be.
      state.final = true;
      return undefined;
    }
    if (!finished) {
      const at = new Date(
        now.getTime() +
          retryDelayMs(state.attempts, envelope.receivedAt, this.#d.policy, now, this.#d.random),
      );
      state.nextAttemptAt = at.toISOString();
      // Durable before anything depends on it: a crash after this never re-sends to a recipient.
      await spool.writeState(state);
      if (delayNoticeDue(state, envelope.receivedAt, this.#d.policy, now)) {
        await this.#d.notifier.notify('delayed', envelope, state, pendingOf(state));
        state.delayNotifiedAt = now.toISOString();
        await spool.writeState(state);
      }
      this.#d.onDeferred?.(envelope, state);
      return at;
    }
    // Durable before the notifications: a crash after this never re-sends to a recipient.
    await spool.writeState(state);
    await this.#notifyFinal(envelope, state);
    state.final = true;
    delete state.nextAttemptAt;
    await spool.writeState(state);
    return undefined;
  }

  /** Whether a finished destination needs no notification and is its message's only one. */
  #quietEnd(envelope: SpoolEnvelope, state: DestinationState): boolean {
    if (state.recipients.some((r) => r.state !== 'delivered')) return false;
    const successWanted = state.recipients.some((r) =>
      r.dsn?.notify?.some((n) => n.trim().toUpperCase() === 'SUCCESS'),
    );
    if (successWanted && envelope.mailFrom !== '') return false;
    return destinationsOf(envelope).size === 1;
  }

  async #notifyFinal(envelope: SpoolEnvelope, state: DestinationState): Promise<void> {
    const failed = state.recipients.filter((r) => r.state === 'failed');
    await this.#d.notifier.notify('failed', envelope, state, failed);
    // RFC 3461 §5.2.2: success is reported by the last MTA that supports DSN. Our store is final;
    // a remote without DSN cannot report it, so we do ("relayed" to a non-DSN MTA, here delivered).
    const local = state.destination === LOCAL_DESTINATION;
    if (local || state.remoteDsn === false) {
      const delivered = state.recipients.filter((r) => r.state === 'delivered');
      await this.#d.notifier.notify('delivered', envelope, state, delivered);
    }
  }

  /**
   * Gives up on the pending recipients of a destination (an operator's `mssgw queue delete`): they
   * fail with `reason`, the sender gets the failure DSN, and the entry settles if it was the last.
   */
  async abandon(spoolId: string, destination: string, reason: string): Promise<DestinationState | undefined> {
    const envelope = await this.#d.spool.readEnvelope(spoolId);
    if (!envelope) return undefined;
    const state =
      (await this.#d.spool.readState(spoolId, destination)) ?? initialState(envelope, destination);
    const now = this.#d.clock.now();
    const kind = destination === LOCAL_DESTINATION ? 'local' : 'relay';
    for (const r of pendingOf(state)) {
      r.state = 'failed';
      r.status = '5.0.0';
      r.lastResult = `${reason}; last attempt: ${r.lastResult ?? 'none'}`;
      r.finishedAt = now.toISOString();
      this.#journal(kind, 'failed', envelope, state, r);
    }
    await this.#d.spool.writeState(state);
    if (!state.final) await this.#notifyFinal(envelope, state);
    state.final = true;
    await this.#d.spool.writeState(state);
    await this.settleIfFinished(envelope, state);
    return state;
  }

  /**
   * Removes the spool entry once every destination is final (moved to `failed/` when a recipient
   * failed). Each destination writes its own final state before looking at the others, so when two
   * finish at once at least one of them sees both final.
   */
  async settleIfFinished(envelope: SpoolEnvelope, current: DestinationState): Promise<boolean> {
    const states: DestinationState[] = [];
    for (const destination of destinationsOf(envelope).keys()) {
      const s =
        destination === current.destination
          ? current
          : await this.#d.spool.readState(envelope.id, destination);
      if (!s?.final) return false;
      states.push(s);
    }
    if (states.some((s) => s.recipients.some((r) => r.state === 'failed')))
      await this.#d.spool.moveToFailed(envelope, states);
    else
      await this.#d.spool.remove(
        envelope.id,
        states.map((st) => st.destination),
        // Only our store can be asked whether it already has the message (exactly once, §6): an
        // entry with a destination at another operator keeps its removal durable.
        states.some((st) => st.destination !== LOCAL_DESTINATION),
      );
    this.#d.onSettled?.(envelope, states);
    return true;
  }

  #report(
    kind: 'local' | 'relay',
    envelope: SpoolEnvelope,
    state: DestinationState,
    applied: ReturnType<typeof applyAttempt>,
    reason: string,
    now: Date,
  ): void {
    const o = this.#d.observer;
    const latency = (now.getTime() - Date.parse(envelope.receivedAt)) / 1000;
    for (const r of applied.delivered) {
      o?.attempt(kind, 'delivered', reason);
      o?.delivered(kind, latency);
      if (kind === 'relay') o?.finalRelay('delivered', r.address.endsWith(`@${PATIENT_DOMAIN}`));
      this.#journal(kind, 'delivered', envelope, state, r);
    }
    for (const r of applied.failed) {
      o?.attempt(kind, 'permanent', reason);
      if (kind === 'relay') o?.finalRelay('failed', r.address.endsWith(`@${PATIENT_DOMAIN}`));
      this.#journal(kind, 'failed', envelope, state, r);
    }
    for (const r of applied.deferred) {
      o?.attempt(kind, 'temporary', reason);
      if (kind === 'relay') this.#journal(kind, 'deferred', envelope, state, r);
    }
    if (applied.deferred.length > 0)
      this.#d.logger.info(
        {
          event: `delivery.${kind}.deferred`,
          spoolId: envelope.id,
          destination: state.destination,
          reason,
          attempts: state.attempts,
        },
        'delivery deferred',
      );
  }

  #journal(
    kind: 'local' | 'relay',
    outcome: 'delivered' | 'failed' | 'deferred' | 'expired',
    envelope: SpoolEnvelope,
    state: DestinationState,
    r: DestinationRecipient,
  ): void {
    this.#d.journal.record({
      event: `delivery.${kind}.${outcome}`,
      spoolId: envelope.id,
      messageId: envelope.messageId,
      sender: envelope.mailFrom,
      recipient: r.address,
      attempts: r.attempts,
      result: r.lastResult,
      ...(state.remote ? { remoteHost: state.remote.host, remoteDn: state.remote.dn } : {}),
    });
  }
}
