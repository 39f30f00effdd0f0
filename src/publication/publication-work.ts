import type { Clock } from '../shared/index.js';
import { GatewayError } from '../errors/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import {
  desiredFor,
  listedAfterFailure,
  nextStep,
  reachedState,
  type Desired,
} from './publication-decision.js';
import { ERROR_FIELDS, FIELD, type PublicationRecord, type PublicationStore } from './publication-store.js';
import type { Bal, BalListQuery, BalPage } from '../registry/index.js';
import type { CallOutcome, DirectoryCallRecord, DirectoryOperation, Listed } from './publication-state.js';
import { isDirectoryCallError, type DirectoryCallError, type Publisher } from './publisher.js';

/** The registry as the publication service reads it (BalRegistry fits). */
export interface BalSource {
  get(address: string): Promise<Bal | null>;
  list(query?: BalListQuery): Promise<BalPage>;
}

/** Hooks for metrics; the composition root wires them to the catalogue. */
export interface PublicationObserver {
  /** One directory call (`mssgw_publication_calls_total`). */
  call?(operation: DirectoryOperation, outcome: CallOutcome): void;
}

/** Which attempt of the job this is, and whether BullMQ will try again after a temporary failure. */
export interface WorkRetry {
  readonly attempt: number;
  readonly last: boolean;
}

export interface PublicationWorkDeps {
  readonly store: PublicationStore;
  readonly bals: BalSource;
  readonly publisher: Publisher;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly logger: Logger;
  readonly observer?: PublicationObserver;
}

// Changes that keep arriving while a mailbox is worked are taken in this many rounds per job; after
// that the job ends and the completion handler queues the rest (other mailboxes get their turn).
const MAX_ROUNDS = 5;

/**
 * One job: bring one mailbox's directory entry to where the rules want it. Each round reads the
 * mailbox and the record, makes at most one change (plus the insert a replace falls back to), and
 * settles the version it read. A temporary failure is recorded without a state change and thrown,
 * so BullMQ retries the job with backoff; on the last attempt, or on a refusal, the mailbox is
 * marked failed. Nothing here writes `published` before the directory said yes.
 */
export class PublicationWork {
  readonly #d: PublicationWorkDeps;

  constructor(deps: PublicationWorkDeps) {
    this.#d = deps;
  }

  async run(address: string, retry: WorkRetry): Promise<void> {
    for (let round = 0; round < MAX_ROUNDS; round++) {
      const record = await this.#d.store.read(address);
      if (!record || record.applied >= record.desired) return;
      const bal = await this.#d.bals.get(address);
      const desired = desiredFor(bal, new Set(record.holds));
      const step = nextStep(desired, record.listed, record.published);
      const after =
        step.kind === 'settle'
          ? await this.#settle(record, desired, undefined)
          : await this.#change(record, desired, step.operation, retry);
      if (!after || after.applied >= after.desired) return;
    }
  }

  async #change(
    record: PublicationRecord,
    desired: Desired,
    operation: DirectoryOperation,
    retry: WorkRetry,
  ): Promise<PublicationRecord | null> {
    try {
      const call = await this.#call(record.address, operation, desired, retry.attempt);
      return await this.#settle(record, desired, call);
    } catch (err) {
      if (!isDirectoryCallError(err)) throw err;
      // The entry we meant to replace is gone from the directory: add it instead, at once.
      if (err.code === 'PUBLICATION_ENTRY_MISSING') {
        return this.#change({ ...record, listed: 'no' }, desired, 'insert', retry);
      }
      return this.#failed(record, desired, err, retry);
    }
  }

  /** One directory call, journaled and counted whatever its outcome. */
  async #call(
    address: string,
    operation: DirectoryOperation,
    desired: Desired,
    attempt: number,
  ): Promise<DirectoryCallRecord> {
    const started = Date.now();
    const at = this.#d.clock.now().toISOString();
    const report = (call: DirectoryCallRecord, code?: string) => {
      this.#d.observer?.call?.(operation, call.outcome);
      const facts = {
        event: 'publication.call',
        address,
        operation,
        outcome: call.outcome,
        ...(call.status === undefined ? {} : { status: call.status }),
        attempt,
        durationMs: Date.now() - started,
        ...(code === undefined ? {} : { code }),
      };
      this.#d.journal.record(facts);
      this.#d.logger[call.outcome === 'ok' ? 'info' : 'warn'](facts, 'national directory call');
    };
    try {
      const answer = await this.#invoke(operation, desired, address);
      const call: DirectoryCallRecord = { operation, outcome: 'ok', status: answer.status, at };
      report(call);
      return call;
    } catch (err) {
      if (isDirectoryCallError(err)) report(callRecord(err, at), err.code);
      throw err;
    }
  }

  #invoke(operation: DirectoryOperation, desired: Desired, address: string) {
    const { publisher } = this.#d;
    switch (operation) {
      case 'insert':
      case 'replace':
        if (desired.target !== 'published')
          throw new GatewayError('INTERNAL', `${operation} of ${address} while unpublished`);
        return operation === 'insert' ? publisher.insert(desired.entry) : publisher.replace(desired.entry);
      case 'delete':
        return this.#target(address).then((target) => publisher.delete(target));
    }
  }

  /** The resource a delete addresses: the mailbox's owner (kept by the registry, tombstones too). */
  async #target(address: string) {
    const bal = await this.#d.bals.get(address);
    if (!bal) throw new GatewayError('BAL_NOT_FOUND', `no mailbox ${address} to unpublish`);
    return { address: bal.address, type: bal.type, owner: bal.owner };
  }

  /** Records the desired state as reached (after `call`, or without a call when none was needed). */
  #settle(
    record: PublicationRecord,
    desired: Desired,
    call: DirectoryCallRecord | undefined,
  ): Promise<PublicationRecord | null> {
    const state = reachedState(desired);
    const published = desired.target === 'published';
    return this.#write(record, {
      state,
      settles: record.desired,
      reaches: desired.target,
      set: {
        listed: published ? 'yes' : 'no',
        attempts: '0',
        ...(published ? { published: FIELD.entry(desired.entry) } : { reason: desired.reason }),
        ...(call === undefined ? {} : { lastCall: FIELD.callRecord(call) }),
      },
      del: [...ERROR_FIELDS, published ? 'reason' : 'published'],
    });
  }

  async #failed(
    record: PublicationRecord,
    desired: Desired,
    err: DirectoryCallError,
    retry: WorkRetry,
  ): Promise<PublicationRecord | null> {
    const at = this.#d.clock.now().toISOString();
    const listed: Listed = listedAfterFailure(err.operation, record.listed, err);
    const set = {
      listed,
      lastCall: FIELD.callRecord(callRecord(err, at)),
      errorCode: err.code,
      errorMessage: err.message,
      errorAt: at,
    };
    if (err.temporary && !retry.last) {
      // Not settled: the state stays pending, BullMQ retries after the backoff.
      await this.#write(record, { set, incrAttempts: true });
      throw err;
    }
    return this.#write(record, { state: 'failed', settles: record.desired, set, incrAttempts: true });
  }

  async #write(
    before: PublicationRecord,
    request: Parameters<PublicationStore['write']>[2],
  ): Promise<PublicationRecord | null> {
    const after = await this.#d.store.write(before.address, this.#d.clock.now(), request);
    if (after && after.state !== before.state) {
      this.#d.journal.record({
        event: 'publication.state.changed',
        address: before.address,
        from: before.state,
        to: after.state,
        ...(after.reason === undefined || after.state === 'published' ? {} : { reason: after.reason }),
        ...(after.state === 'failed' && after.error ? { code: after.error.code } : {}),
      });
    }
    return after;
  }
}

function callRecord(err: DirectoryCallError, at: string): DirectoryCallRecord {
  return {
    operation: err.operation,
    outcome: err.outcome,
    ...(err.status === undefined ? {} : { status: err.status }),
    at,
    ...(err.detail === undefined ? {} : { detail: err.detail }),
  };
}
