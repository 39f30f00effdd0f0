import type { IndicatorHeaders } from './message-format.js';
/**
 * What the spool keeps beside each message: the envelope, fixed at commit. The recipients' `state`,
 * `attempts` and `lastResult` are their values at commit; progress is kept per destination in a
 * DestinationState.
 */
export type RecipientState = 'pending' | 'delivered' | 'failed';

export interface SpoolRecipient {
  readonly address: string;
  /**
   * `local`: a mailbox of ours, delivered over LMTP. `relay`: another operator's, waiting for the
   * outbound relay (kept in the spool until it takes it). Absent means local (older entries).
   */
  readonly route?: 'local' | 'relay';
  state: RecipientState;
  attempts: number;
  /** DSN parameters (RFC 3461) given at RCPT, kept for delivery notifications. */
  readonly dsn?: { readonly notify?: readonly string[]; readonly orcpt?: string };
  lastResult?: string;
  finishedAt?: string;
}

export interface SpoolEnvelope {
  readonly id: string;
  readonly version: 1;
  readonly receivedAt: string;
  /** Empty string for the null reverse-path (DSN/MDN). */
  readonly mailFrom: string;
  readonly dsn?: { readonly ret?: string; readonly envid?: string };
  /** `internal`: a message the gateway wrote itself (a DSN, a lifecycle warning). */
  readonly channel: 'mx' | 'submission' | 'internal';
  readonly size: number;
  readonly messageId?: string;
  /** The headers the indicators count, captured at receipt (absent in envelopes spooled before). */
  readonly headers?: IndicatorHeaders;
  readonly peer: {
    readonly address: string;
    readonly helo?: string;
    readonly dn?: string;
    readonly tlsProtocol?: string;
    readonly tlsCipher?: string;
  };
  recipients: SpoolRecipient[];
  nextAttemptAt: string;
}

/** `local` (our store, over LMTP) or a recipient domain at another operator. */
export type Destination = string;

export const LOCAL_DESTINATION = 'local';

export interface DestinationRecipient {
  readonly address: string;
  readonly dsn?: SpoolRecipient['dsn'];
  state: RecipientState;
  attempts: number;
  /** The last reply, `250 2.0.0 Ok` or `451 4.4.1 …`, or our own reason. */
  lastResult?: string;
  /** RFC 3463 status of the last outcome, for DSNs. */
  status?: string;
  finishedAt?: string;
}

/**
 * The progress of one destination of one spooled message: one writer (the queue job of that
 * destination), written to the spool before the queue hears of it, so Redis losing a job or its
 * progress never makes us deliver a recipient twice or forget one.
 */
export interface DestinationState {
  readonly version: 1;
  readonly spoolId: string;
  readonly destination: Destination;
  recipients: DestinationRecipient[];
  attempts: number;
  lastAttemptAt?: string;
  nextAttemptAt?: string;
  /** The remote MX last talked to (relay), `host` and certificate DN. */
  remote?: { host: string; dn?: string };
  /** The remote advertised DSN (RFC 3461), so it reports success itself. */
  remoteDsn?: boolean;
  delayNotifiedAt?: string;
  /** Every recipient has its final outcome and the notifications were spooled. */
  final: boolean;
}
