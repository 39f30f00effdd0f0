import type { X509Certificate } from 'node:crypto';
import type { ErrorCode } from '../errors/index.js';

/**
 * Who the caller is (ARCHITECTURE.md §4: "the login name is the mailbox; the credential is the person
 * or software"). A principal never carries the credential itself.
 */
export type Principal =
  /** A person, from a Pro Santé Connect token or a CPS-like certificate. */
  | {
      readonly kind: 'person';
      /** National id: 8 + RPPS or 0 + ADELI. */
      readonly nationalId: string;
      /** How it was proven: token issuer name, or `certificate`. */
      readonly via: string;
      /** Certificate DN (canonical), when proven by certificate. */
      readonly dn?: string;
    }
  /** Software with an organisation certificate (APP mailboxes). */
  | { readonly kind: 'application'; readonly dn: string; readonly fingerprint: string }
  /** An operator-managed secret of one mailbox (PLAIN/LOGIN, where the configuration allows it). */
  | { readonly kind: 'secret'; readonly bal: string };

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

export type Right = 'owner' | 'delegate' | 'member' | 'manager' | 'application';
export type Scope = 'read' | 'send';

/** The outcome of a successful authentication: this principal may use this mailbox, this way. */
export interface Access {
  readonly bal: string;
  readonly right: Right;
  readonly scopes: ReadonlySet<Scope>;
  readonly principal: Principal;
  /** When a delegation ends (ISO), if it does. */
  readonly expiresAt?: string;
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
