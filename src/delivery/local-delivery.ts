import { EventEmitter } from 'node:events';
import type { Readable } from 'node:stream';
import type { Clock } from '../clock.js';
import type { AuditJournal } from '../observability/journal.js';
import type { Logger } from '../observability/logger.js';
import type { Spool } from './spool.js';
import type { SpoolEnvelope } from './spool-entry.js';

/** One recipient's outcome at the store (LMTP answers per recipient, RFC 2033 §4.2). */
export interface TransportResult {
  readonly recipient: string;
  readonly outcome: 'delivered' | 'temporary' | 'permanent';
  readonly code: number;
  readonly enhancedCode?: string;
  readonly text: string;
}

/** The mailbox store as the delivery worker sees it (implemented over LMTP in store/). */
export interface LocalTransport {
  deliver(envelope: { from: string; to: string[] }, message: () => Readable): Promise<TransportResult[]>;
}

export interface LocalDeliveryOptions {
  readonly concurrency: number;
  readonly retryInitialSeconds: number;
  readonly retryMaxSeconds: number;
  readonly maxAgeHours: number;
}

export interface DeliveryObserver {
  attempt(outcome: TransportResult['outcome'] | 'error'): void;
  delivered(latencySeconds: number): void;
}

export interface LocalDeliveryDeps {
  readonly spool: Spool;
  readonly transport: LocalTransport;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly observer?: DeliveryObserver;
  readonly options: LocalDeliveryOptions;
}

interface Slot {
  envelope: SpoolEnvelope;
  timer: NodeJS.Timeout | undefined;
  running: boolean;
}

function isLocalPending(r: SpoolEnvelope['recipients'][number]): boolean {
  return r.state === 'pending' && (r.route ?? 'local') === 'local';
}

/**
 * Delivers spooled messages to the store and retries temporary failures with exponential backoff
 * and jitter. A message leaves the spool only when every recipient has a final outcome. Events:
 * `settled` (envelope) once an entry is finished, `deferred` (envelope) after a temporary failure,
 * `awaiting-relay` (envelope) when only recipients at other operators remain.
 */
export class LocalDelivery extends EventEmitter {
  readonly #d: LocalDeliveryDeps;
  readonly #slots = new Map<string, Slot>();
  readonly #ready: string[] = [];
  #active = 0;
  #stopped = false;
  readonly #idle = new Set<() => void>();
  readonly #awaitingRelay = new Set<string>();

  constructor(deps: LocalDeliveryDeps) {
    super();
    this.#d = deps;
  }

  /** Start-up sweep: every committed entry is queued again (ARCHITECTURE.md §6). */
  async start(): Promise<number> {
    const { envelopes, removedUncommitted } = await this.#d.spool.recover();
    if (envelopes.length > 0 || removedUncommitted > 0) {
      this.#d.logger.info(
        { event: 'spool.recovered', entries: envelopes.length, removedUncommitted },
        'spool recovered',
      );
    }
    for (const e of envelopes) this.enqueue(e);
    return envelopes.length;
  }

  enqueue(envelope: SpoolEnvelope): void {
    if (this.#stopped || this.#slots.has(envelope.id)) return;
    this.#slots.set(envelope.id, { envelope, timer: undefined, running: false });
    this.#ready.push(envelope.id);
    this.#pump();
  }

  /** Retries every waiting entry now (the store came back). */
  retryNow(): void {
    for (const [id, slot] of this.#slots) {
      if (slot.timer && !slot.running) {
        clearTimeout(slot.timer);
        slot.timer = undefined;
        this.#ready.push(id);
      }
    }
    this.#pump();
  }

  get depth(): number {
    return this.#slots.size;
  }

  /** Spooled entries whose remaining recipients wait for the outbound relay. */
  get awaitingRelay(): number {
    return this.#awaitingRelay.size;
  }

  oldestAgeSeconds(): number {
    let oldest = Infinity;
    for (const s of this.#slots.values()) oldest = Math.min(oldest, Date.parse(s.envelope.receivedAt));
    return oldest === Infinity ? 0 : Math.max(0, (this.#d.clock.now().getTime() - oldest) / 1000);
  }

  /** Stops scheduling; waits for deliveries in flight. Entries stay in the spool for the next start. */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const s of this.#slots.values()) if (s.timer) clearTimeout(s.timer);
    if (this.#active > 0) await new Promise<void>((resolve) => this.#idle.add(resolve));
  }

  #pump(): void {
    while (!this.#stopped && this.#active < this.#d.options.concurrency && this.#ready.length > 0) {
      const id = this.#ready.shift()!;
      const slot = this.#slots.get(id);
      if (!slot || slot.running) continue;
      slot.running = true;
      this.#active += 1;
      void this.#attempt(slot).finally(() => {
        slot.running = false;
        this.#active -= 1;
        if (this.#active === 0) for (const r of this.#idle) r();
        this.#pump();
      });
    }
  }

  async #attempt(slot: Slot): Promise<void> {
    const env = slot.envelope;
    const pending = env.recipients.filter(isLocalPending);
    if (pending.length === 0) return this.#settleOrReschedule(slot, this.#d.clock.now());
    const log = this.#d.logger.child({ spoolId: env.id });
    let results: TransportResult[];
    try {
      results = await this.#d.transport.deliver(
        { from: env.mailFrom, to: pending.map((r) => r.address) },
        () => this.#d.spool.openMessage(env.id),
      );
    } catch (err) {
      this.#d.observer?.attempt('error');
      log.warn(
        { event: 'delivery.local.error', err: (err as Error).message },
        'store unreachable, will retry',
      );
      results = pending.map((r) => ({
        recipient: r.address,
        outcome: 'temporary',
        code: 451,
        text: (err as Error).message,
      }));
    }
    const now = this.#d.clock.now();
    for (const r of pending) {
      const res = results.find((x) => x.recipient.toLowerCase() === r.address.toLowerCase());
      r.attempts += 1;
      r.lastResult = res
        ? `${res.code}${res.enhancedCode ? ' ' + res.enhancedCode : ''} ${res.text}`
        : 'no answer';
      if (res?.outcome === 'delivered') {
        r.state = 'delivered';
        r.finishedAt = now.toISOString();
        this.#d.observer?.attempt('delivered');
        this.#d.observer?.delivered((now.getTime() - Date.parse(env.receivedAt)) / 1000);
        this.#d.journal.record({
          event: 'delivery.local.delivered',
          spoolId: env.id,
          messageId: env.messageId,
          recipient: r.address,
          result: r.lastResult,
        });
      } else if (res?.outcome === 'permanent') {
        r.state = 'failed';
        r.finishedAt = now.toISOString();
        this.#d.observer?.attempt('permanent');
        this.#d.journal.record({
          event: 'delivery.local.failed',
          spoolId: env.id,
          messageId: env.messageId,
          recipient: r.address,
          result: r.lastResult,
        });
      } else if (res) {
        this.#d.observer?.attempt('temporary');
      }
    }
    await this.#settleOrReschedule(slot, now);
  }

  async #settleOrReschedule(slot: Slot, now: Date): Promise<void> {
    const env = slot.envelope;
    const maxAgeMs = this.#d.options.maxAgeHours * 3600_000;
    const stillPending = env.recipients.filter(isLocalPending);
    if (stillPending.length > 0 && now.getTime() - Date.parse(env.receivedAt) > maxAgeMs) {
      for (const r of stillPending) {
        r.state = 'failed';
        r.finishedAt = now.toISOString();
        r.lastResult = `expired after ${this.#d.options.maxAgeHours} h: ${r.lastResult ?? ''}`;
        this.#d.journal.record({
          event: 'delivery.local.expired',
          spoolId: env.id,
          messageId: env.messageId,
          recipient: r.address,
        });
      }
    }
    if (stillPending.length === 0 && env.recipients.some((r) => r.state === 'pending')) {
      // Only recipients at other operators remain: the entry stays spooled for the relay.
      await this.#d.spool.update(env);
      this.#slots.delete(env.id);
      this.#awaitingRelay.add(env.id);
      this.emit('awaiting-relay', env);
      return;
    }
    if (env.recipients.every((r) => r.state !== 'pending')) {
      if (env.recipients.some((r) => r.state === 'failed')) await this.#d.spool.moveToFailed(env);
      else await this.#d.spool.remove(env.id);
      this.#slots.delete(env.id);
      this.emit('settled', env);
      return;
    }
    const attempts = Math.max(...stillPending.map((r) => r.attempts));
    const base = Math.min(
      this.#d.options.retryMaxSeconds,
      this.#d.options.retryInitialSeconds * 2 ** (attempts - 1),
    );
    const delaySeconds = base * (0.75 + Math.random() * 0.5);
    env.nextAttemptAt = new Date(now.getTime() + delaySeconds * 1000).toISOString();
    await this.#d.spool.update(env);
    this.emit('deferred', env);
    if (this.#stopped) return;
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      this.#ready.push(env.id);
      this.#pump();
    }, delaySeconds * 1000);
    slot.timer.unref();
  }
}
