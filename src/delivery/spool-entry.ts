/** What the spool keeps beside each message: the envelope and per-recipient delivery state. */
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
  readonly channel: 'mx' | 'submission';
  readonly size: number;
  readonly messageId?: string;
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
