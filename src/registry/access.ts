// Who the caller is and what it may do with a mailbox. Resolved here from the rights we keep;
// auth/ proves the principal and re-exports this vocabulary for the front ends.

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
  | {
      readonly kind: 'secret';
      readonly bal: string;
      /**
       * Which secret the login proved (a fingerprint of its stored hash, never the secret): an open
       * session ends when the secret is replaced, not only when it is removed.
       */
      readonly generation?: string;
    };

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
