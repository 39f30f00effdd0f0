import { GatewayError, type ErrorCode } from '../errors/index.js';
import type { DirectoryTarget, MailboxEntry } from './mailbox-entry.js';
import type { CallOutcome, DirectoryOperation } from './publication-state.js';

/**
 * How our mailboxes reach the national directory. The agency's write interface is a draft
 * (MSSANTE.md "Publication (write)"); the FHIR PATCH implementation (fhir-publisher.ts) is one
 * way, and another protocol (the older certificate-authenticated operator feed) can replace it
 * without touching the publication rules. Each method is exactly one call to the directory.
 *
 * Failures throw a DirectoryCallError: PUBLICATION_NOT_FOUND (no resource has the owner's
 * identifier), PUBLICATION_AMBIGUOUS (several have), PUBLICATION_ENTRY_MISSING (nothing to
 * replace), PUBLICATION_REJECTED (any other refusal): all permanent; PUBLICATION_UNAVAILABLE
 * (network, timeout, server error): temporary, retried with backoff.
 */
export interface Publisher {
  /** Adds the mailbox's entry to its owner's resource; an older copy of it is replaced, not doubled. */
  insert(entry: MailboxEntry): Promise<DirectoryAnswer>;
  /** Replaces the metadata of the mailbox's entry; PUBLICATION_ENTRY_MISSING when there is none. */
  replace(entry: MailboxEntry): Promise<DirectoryAnswer>;
  /** Removes the mailbox's entry from its owner's resource; succeeds when there is none. */
  delete(target: DirectoryTarget): Promise<DirectoryAnswer>;
}

export interface DirectoryAnswer {
  /** HTTP status (or the protocol's equivalent) of the accepting answer. */
  readonly status: number;
}

export type PublicationErrorCode = Extract<
  ErrorCode,
  | 'PUBLICATION_NOT_FOUND'
  | 'PUBLICATION_AMBIGUOUS'
  | 'PUBLICATION_ENTRY_MISSING'
  | 'PUBLICATION_REJECTED'
  | 'PUBLICATION_UNAVAILABLE'
>;

const OUTCOMES: Readonly<Record<PublicationErrorCode, CallOutcome>> = {
  PUBLICATION_NOT_FOUND: 'not_found',
  PUBLICATION_AMBIGUOUS: 'ambiguous',
  PUBLICATION_ENTRY_MISSING: 'entry_missing',
  PUBLICATION_REJECTED: 'rejected',
  PUBLICATION_UNAVAILABLE: 'unavailable',
};

/** A directory call that did not succeed. The message says what the directory answered, never a secret. */
export class DirectoryCallError extends GatewayError {
  declare readonly code: PublicationErrorCode;
  readonly operation: DirectoryOperation;
  /** HTTP status of the answer; undefined when there was none. */
  readonly status: number | undefined;
  /**
   * False when the request certainly never reached the directory (connection refused, name not
   * found, TLS handshake failed): nothing can have changed there.
   */
  readonly sent: boolean;
  /** What the directory said, shortened, for `bal show`. */
  readonly detail: string | undefined;

  constructor(
    code: PublicationErrorCode,
    message: string,
    facts: { operation: DirectoryOperation; status?: number; sent: boolean; detail?: string },
    options?: ErrorOptions,
  ) {
    super(code, message, { operation: facts.operation, status: facts.status }, options);
    this.name = 'DirectoryCallError';
    this.operation = facts.operation;
    this.status = facts.status;
    this.sent = facts.sent;
    this.detail = facts.detail;
  }

  get outcome(): CallOutcome {
    return OUTCOMES[this.code];
  }
}

export function isDirectoryCallError(err: unknown): err is DirectoryCallError {
  return err instanceof DirectoryCallError;
}
