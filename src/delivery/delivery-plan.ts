import {
  type Destination,
  type DestinationRecipient,
  type DestinationState,
  LOCAL_DESTINATION,
  type SpoolEnvelope,
} from './spool-entry.js';

/**
 * Pure decisions of the delivery queue: how a spooled message splits into jobs, how one attempt's
 * replies change a destination's state, when to retry, expire and send a delay notice. No I/O: the
 * worker reads and writes the spool around these, and the unit tests drive them with tables.
 */

/** One recipient's answer to an attempt (LMTP per recipient, RFC 2033 §4.2; SMTP RCPT then DATA). */
export interface TransportResult {
  readonly recipient: string;
  readonly outcome: 'delivered' | 'temporary' | 'permanent';
  readonly code: number;
  readonly enhancedCode?: string;
  readonly text: string;
  /** The message went out whole and the connection failed before this reply: it may have arrived. */
  readonly outcomeUnknown?: true;
}

export interface RetryPolicy {
  readonly retryInitialSeconds: number;
  readonly retryMaxSeconds: number;
  /** Give up on a recipient this long after the message was received. */
  readonly maxAgeHours: number;
  /** One delay notice once a recipient is still pending this long after reception. */
  readonly delayNoticeHours: number;
}

export function destinationOf(recipient: SpoolEnvelope['recipients'][number]): Destination {
  if ((recipient.route ?? 'local') === 'local') return LOCAL_DESTINATION;
  return recipient.address.slice(recipient.address.lastIndexOf('@') + 1).toLowerCase();
}

/** The destinations of a message, each with its recipients, in envelope order. */
export function destinationsOf(envelope: SpoolEnvelope): Map<Destination, SpoolEnvelope['recipients']> {
  const out = new Map<Destination, SpoolEnvelope['recipients']>();
  for (const r of envelope.recipients) {
    const d = destinationOf(r);
    out.set(d, [...(out.get(d) ?? []), r]);
  }
  return out;
}

/** BullMQ custom ids may not contain `:`; `~` is in neither spool ids nor domain names. */
export function jobIdOf(spoolId: string, destination: Destination): string {
  return `${spoolId}~${destination}`;
}

export function parseJobId(jobId: string): { spoolId: string; destination: Destination } | undefined {
  const at = jobId.indexOf('~');
  if (at <= 0 || at === jobId.length - 1) return undefined;
  return { spoolId: jobId.slice(0, at), destination: jobId.slice(at + 1) };
}

export function initialState(envelope: SpoolEnvelope, destination: Destination): DestinationState {
  const recipients = destinationsOf(envelope).get(destination) ?? [];
  return {
    version: 1,
    spoolId: envelope.id,
    destination,
    recipients: recipients.map((r) => ({
      address: r.address,
      ...(r.dsn ? { dsn: r.dsn } : {}),
      state: 'pending',
      attempts: 0,
    })),
    attempts: 0,
    final: false,
  };
}

export function pendingOf(state: DestinationState): DestinationRecipient[] {
  return state.recipients.filter((r) => r.state === 'pending');
}

function describe(res: TransportResult): string {
  return `${res.code}${res.enhancedCode ? ` ${res.enhancedCode}` : ''} ${res.text}`.trim();
}

/** RFC 3463 status of a reply: its enhanced code, or the class alone. */
export function statusOf(res: Pick<TransportResult, 'code' | 'enhancedCode'>): string {
  if (res.enhancedCode) return res.enhancedCode;
  return `${Math.floor(res.code / 100)}.0.0`;
}

export interface AppliedAttempt {
  readonly delivered: DestinationRecipient[];
  readonly failed: DestinationRecipient[];
  readonly deferred: DestinationRecipient[];
}

/**
 * Records one attempt's replies on the pending recipients. A recipient the transport did not answer
 * for stays pending (counted as deferred).
 */
export function applyAttempt(
  state: DestinationState,
  results: readonly TransportResult[],
  now: Date,
): AppliedAttempt {
  const applied: AppliedAttempt = { delivered: [], failed: [], deferred: [] };
  state.attempts += 1;
  state.lastAttemptAt = now.toISOString();
  for (const r of pendingOf(state)) {
    const res = results.find((x) => x.recipient.toLowerCase() === r.address.toLowerCase());
    r.attempts += 1;
    r.lastResult = res ? describe(res) : 'no answer for this recipient';
    if (res) r.status = statusOf(res);
    if (res?.outcome === 'delivered') {
      r.state = 'delivered';
      r.finishedAt = now.toISOString();
      applied.delivered.push(r);
    } else if (res?.outcome === 'permanent') {
      r.state = 'failed';
      r.finishedAt = now.toISOString();
      applied.failed.push(r);
    } else {
      applied.deferred.push(r);
    }
  }
  return applied;
}

/** Fails every recipient still pending past the maximum age (the failure DSN says why). */
export function expireIfDue(
  state: DestinationState,
  receivedAt: string,
  policy: RetryPolicy,
  now: Date,
): DestinationRecipient[] {
  if (now.getTime() - Date.parse(receivedAt) < policy.maxAgeHours * 3_600_000) return [];
  const expired = pendingOf(state);
  for (const r of expired) {
    r.state = 'failed';
    r.finishedAt = now.toISOString();
    // RFC 3463 §3.5: X.4.7 delivery time expired, keeping the last reason for the sender.
    r.status = '5.4.7';
    r.lastResult = `gave up after ${policy.maxAgeHours} h; last attempt: ${r.lastResult ?? 'none'}`;
  }
  return expired;
}

/** Whether the one delay notice is due now: recipients still pending past the delay, none sent yet. */
export function delayNoticeDue(
  state: DestinationState,
  receivedAt: string,
  policy: RetryPolicy,
  now: Date,
): boolean {
  if (state.delayNotifiedAt !== undefined || pendingOf(state).length === 0) return false;
  return now.getTime() - Date.parse(receivedAt) >= policy.delayNoticeHours * 3_600_000;
}

/**
 * Exponential backoff with ±25 % jitter (so retries of a burst spread out), capped; never past the
 * moment the message expires, so expiry is noticed on time.
 */
export function retryDelayMs(
  attempts: number,
  receivedAt: string,
  policy: RetryPolicy,
  now: Date,
  random: () => number = Math.random,
): number {
  const base = Math.min(
    policy.retryMaxSeconds,
    policy.retryInitialSeconds * 2 ** Math.max(0, Math.min(attempts - 1, 30)),
  );
  const delay = base * 1000 * (0.75 + random() * 0.5);
  const untilExpiry = Date.parse(receivedAt) + policy.maxAgeHours * 3_600_000 - now.getTime();
  return Math.max(0, Math.min(delay, Math.max(untilExpiry, 1000)));
}
