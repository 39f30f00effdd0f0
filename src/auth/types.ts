import type { X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../errors/index.js';
import type { Access } from '../registry/index.js';

// Who the caller is and what it may do (Principal, Access, Right, Scope) is the registry's vocabulary,
// since the registry resolves rights; auth re-exports it for the front ends.
export type { Access, Principal, Right, Scope } from '../registry/index.js';

export type SaslMechanism = 'XOAUTH2' | 'OAUTHBEARER' | 'EXTERNAL' | 'PLAIN' | 'LOGIN';
export type Channel = 'imap' | 'submission';

/** What the TLS layer knows about the connection. */
export interface TlsFacts {
  readonly secure: boolean;
  readonly peerCertificate?: X509Certificate;
  /** OpenSSL's verdict on the client certificate (chain, validity, CRL). */
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

/** One authentication attempt, decoded from the protocol's SASL exchange. */
export interface AuthRequest {
  readonly mechanism: SaslMechanism;
  /** The mailbox (BAL) the client asks to open: XOAUTH2 user=, authzid, or LOGIN name. */
  readonly bal: string | undefined;
  /** Bearer token (XOAUTH2, OAUTHBEARER). Never logged. */
  readonly token?: string;
  /** PLAIN/LOGIN authentication identity and password. Never logged. */
  readonly authcid?: string;
  readonly password?: string;
  readonly channel: Channel;
  readonly tls: TlsFacts;
  /** Client IP, for per-source limits and the journal. */
  readonly remote: string;
}

export type AuthOutcome =
  | { readonly ok: true; readonly access: Access }
  | {
      readonly ok: false;
      readonly code: ErrorCode;
      /** Bounded metric label. */
      readonly reason: string;
      /**
       * Server challenge to send before the final failure, for XOAUTH2 and OAUTHBEARER: the JSON
       * error status of RFC 7628 §3.2.2 (not base64-encoded here).
       */
      readonly saslError?: string;
    };

/** Shared by the IMAP front end and SMTP submission. */
export interface ClientAuthenticator {
  /** Which mechanisms to advertise on a connection in this state. */
  mechanisms(tls: TlsFacts): readonly SaslMechanism[];
  authenticate(request: AuthRequest): Promise<AuthOutcome>;
  /** Records a successful use of the mailbox (last activity, for the lifecycle rules). */
  recordActivity(access: Access, channel: Channel): Promise<void>;
}
