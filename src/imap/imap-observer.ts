import type { SaslMechanism } from '../auth/index.js';
import type { ErrorCode } from '../errors/index.js';

/**
 * What the IMAP front end reports for metrics, as a narrow interface the composition root binds to
 * the metric catalogue (labels are bounded: listener names, mechanism names, error codes, fixed kinds).
 */
export type ImapListenerName = 'starttls' | 'implicit';

/** Phase of a connection when it closes: still before login, or piped to the store. */
export type ImapPhase = 'preauth' | 'proxied';

export type ImapRefusal = 'max-connections' | 'max-per-source' | 'shutting-down';

export type ImapProtocolError =
  | 'syntax'
  | 'line-too-long'
  | 'literal-too-large'
  | 'command-too-large'
  /** Too many invalid commands or failed logins on one connection. */
  | 'too-many-errors'
  | 'preauth-timeout'
  | 'idle-timeout';

export interface ImapObserver {
  /** A connection was accepted (after the handshake on the implicit TLS port). */
  connectionOpened(listener: ImapListenerName): void;
  connectionClosed(listener: ImapListenerName, phase: ImapPhase): void;
  /** Closed at once with a BYE. */
  connectionRefused(listener: ImapListenerName, reason: ImapRefusal): void;
  /** TLS handshakes, implicit or after STARTTLS; `detail` is `full`, `resumed` or a bounded error kind. */
  tlsHandshake(listener: ImapListenerName, outcome: 'ok' | 'failed', detail: string): void;
  /** A login attempt: `ok`, or the error code of the refusal (incl. STORE_UNAVAILABLE). */
  login(mechanism: SaslMechanism, outcome: ErrorCode | 'ok', seconds: number): void;
  protocolError(kind: ImapProtocolError): void;
  /** A piped session ended: bytes from the client to the store and back, and how long it lasted. */
  sessionClosed(bytesFromClient: number, bytesToClient: number, seconds: number): void;
}

export const NOOP_IMAP_OBSERVER: ImapObserver = {
  connectionOpened: () => {},
  connectionClosed: () => {},
  connectionRefused: () => {},
  tlsHandshake: () => {},
  login: () => {},
  protocolError: () => {},
  sessionClosed: () => {},
};
