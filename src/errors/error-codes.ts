/**
 * The one catalogue of error codes (STYLE.md convention 5). Every failure the gateway reports carries
 * one of these codes; the protocol front ends (smtp/, imap/) and the admin API turn a code into a
 * reply in one table each, never by matching message text.
 *
 * `side` says who is at fault: the client (bad input, refused credentials), the server (us: a bug,
 * a missing dependency) or a remote party (another operator, the national directory). It picks the
 * log level and, with `temporary`, the reply class (4xx vs 5xx).
 */
export type FaultSide = 'client' | 'server' | 'remote';

export interface ErrorCodeInfo {
  readonly side: FaultSide;
  readonly temporary: boolean;
  /** HTTP status for the admin API (problem details). */
  readonly http: number;
  readonly summary: string;
}

export const ERROR_CODES = {
  // Transport security and peer trust (MX path, ARCHITECTURE.md §5).
  TLS_REQUIRED: { side: 'client', temporary: false, http: 400, summary: 'STARTTLS is required first' },
  CERT_MISSING: { side: 'client', temporary: false, http: 401, summary: 'no client certificate presented' },
  CERT_UNTRUSTED: {
    side: 'client',
    temporary: false,
    http: 401,
    summary: 'certificate does not chain to a trusted IGC-Santé authority',
  },
  CERT_EXPIRED: {
    side: 'client',
    temporary: false,
    http: 401,
    summary: 'certificate outside its validity period',
  },
  CERT_REVOKED: { side: 'client', temporary: false, http: 401, summary: 'certificate revoked' },
  CRL_UNAVAILABLE: {
    side: 'server',
    temporary: true,
    http: 503,
    summary: 'no current revocation list for the issuing authority',
  },
  OPERATOR_NOT_WHITELISTED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'certificate DN is not a whitelisted operator DN',
  },
  SENDER_DOMAIN_NOT_AUTHORISED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'sender domain is not served by the operator certificate',
  },
  // Recipients and messages.
  RECIPIENT_UNKNOWN: { side: 'client', temporary: false, http: 404, summary: 'no such mailbox' },
  RECIPIENT_SUSPENDED: { side: 'client', temporary: false, http: 409, summary: 'mailbox suspended' },
  RELAY_DENIED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'relaying denied: the domain is neither ours nor in the MSSante trust space',
  },
  RELAY_NOT_OFFERED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: "relaying denied: the domain is another MSSante operator's, reached through its own MX",
  },
  RECIPIENT_OUTSIDE_TRUST_SPACE: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'recipient domain is outside the MSSante trust space',
  },
  TOO_MANY_RECIPIENTS: { side: 'client', temporary: true, http: 400, summary: 'too many recipients' },
  MESSAGE_TOO_LARGE: {
    side: 'client',
    temporary: false,
    http: 413,
    summary: 'message exceeds the size limit',
  },
  BAD_ADDRESS_SYNTAX: { side: 'client', temporary: false, http: 400, summary: 'malformed address' },
  // Our own dependencies.
  SPOOL_FAILED: { side: 'server', temporary: true, http: 503, summary: 'message could not be made durable' },
  REGISTRY_UNAVAILABLE: {
    side: 'server',
    temporary: true,
    http: 503,
    summary: 'mailbox registry unavailable',
  },
  STORE_UNAVAILABLE: { side: 'server', temporary: true, http: 503, summary: 'mailbox store unavailable' },
  STORE_REJECTED: {
    side: 'server',
    temporary: false,
    http: 502,
    summary: 'mailbox store refused the message',
  },
  INTERNAL: { side: 'server', temporary: true, http: 500, summary: 'internal error' },
  // Client authentication and authorisation (IMAP and submission, ARCHITECTURE.md §4).
  AUTH_REQUIRED: { side: 'client', temporary: false, http: 401, summary: 'authentication required first' },
  AUTH_TLS_REQUIRED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'authentication needs TLS first',
  },
  AUTH_MECHANISM_NOT_ALLOWED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'this authentication mechanism is not allowed for this mailbox',
  },
  AUTH_MALFORMED: { side: 'client', temporary: false, http: 400, summary: 'malformed SASL exchange' },
  AUTH_TOKEN_INVALID: {
    side: 'client',
    temporary: false,
    http: 401,
    summary: 'access token not valid (signature, issuer, audience or format)',
  },
  AUTH_TOKEN_EXPIRED: { side: 'client', temporary: false, http: 401, summary: 'access token expired' },
  AUTH_ISSUER_UNAVAILABLE: {
    side: 'remote',
    temporary: true,
    http: 503,
    summary: "the token issuer's keys cannot be fetched right now",
  },
  AUTH_CREDENTIALS_INVALID: { side: 'client', temporary: false, http: 401, summary: 'invalid credentials' },
  AUTH_NOT_AUTHORISED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'this identity has no right on this mailbox',
  },
  AUTH_MAILBOX_DISABLED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'mailbox suspended or deleted',
  },
  AUTH_RATE_LIMITED: {
    side: 'client',
    temporary: true,
    http: 429,
    summary: 'too many failed authentications, try again later',
  },
  AUTH_MAILBOX_REQUIRED: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'name the mailbox to open (SASL authorization identity, XOAUTH2 user=)',
  },
  SEND_NOT_AUTHORISED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'this identity may not send from this mailbox',
  },
  SENDER_NOT_ALLOWED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'envelope sender is not the authenticated mailbox',
  },
  PATIENT_ADDRESS_INVALID: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'not a valid Mon espace santé address (15-digit INS with its key)',
  },
  FROM_NOT_ALLOWED: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'From:/Sender: do not match the authenticated mailbox',
  },
  // Configuration and start-up.
  CONFIG_INVALID: { side: 'client', temporary: false, http: 400, summary: 'invalid configuration' },
  PKI_INVALID: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'invalid certificate or key material',
  },
  PKI_TEST_ANCHOR_IN_PRODUCTION: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'a test or development authority is trusted in production mode',
  },
  PKI_NO_REVOCATION: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'a trusted authority has no revocation list source in production mode',
  },
  WHITELIST_INVALID: { side: 'remote', temporary: false, http: 422, summary: 'whitelist file is not valid' },
  // National directory mirrors (whitelist, BAL extraction, CRLs): a copy that fails is never used.
  MIRROR_SOURCE_UNAVAILABLE: {
    side: 'remote',
    temporary: true,
    http: 502,
    summary: 'the source of a directory mirror cannot be read right now',
  },
  MIRROR_COPY_REFUSED: {
    side: 'remote',
    temporary: false,
    http: 422,
    summary: 'a new copy of a directory mirror was refused; the last good copy stays in service',
  },
  MIRROR_UNKNOWN: { side: 'client', temporary: false, http: 404, summary: 'no such directory mirror' },
  MIRROR_REFRESH_UNAVAILABLE: {
    side: 'server',
    temporary: true,
    http: 503,
    summary: 'no gateway process took the mirror refresh, or it did not finish in time',
  },
  DIRECTORY_UNAVAILABLE: {
    side: 'server',
    temporary: true,
    http: 503,
    summary: 'the national directory mirror cannot be read right now',
  },
  DEPENDENCY_MISSING: {
    side: 'server',
    temporary: false,
    http: 500,
    summary: 'a required program is missing',
  },
  // Mailbox registry (admin API and CLI).
  BAL_INVALID_ADDRESS: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'not a valid mailbox address',
  },
  BAL_DOMAIN_NOT_OURS: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'address outside our domains',
  },
  BAL_INVALID_TYPE: { side: 'client', temporary: false, http: 400, summary: 'unknown mailbox type' },
  BAL_INVALID_OWNER: { side: 'client', temporary: false, http: 400, summary: 'owner identifier not valid' },
  BAL_EXISTS: { side: 'client', temporary: false, http: 409, summary: 'mailbox already exists' },
  BAL_NOT_FOUND: { side: 'client', temporary: false, http: 404, summary: 'mailbox not found' },
  BAL_OWNER_MISMATCH: {
    side: 'client',
    temporary: false,
    http: 409,
    summary: 'the national directory lists this address for another person',
  },
  QUEUE_JOB_NOT_FOUND: { side: 'client', temporary: false, http: 404, summary: 'no such queue job' },
  QUEUE_JOB_FINISHED: {
    side: 'client',
    temporary: false,
    http: 410,
    summary: 'the queue job is finished (delivered, failed or deleted): nothing left to do',
  },
  QUEUE_JOB_BUSY: {
    side: 'client',
    temporary: true,
    http: 409,
    summary: 'the job is being worked on right now; try again in a moment',
  },
  QUEUE_UNAVAILABLE: { side: 'server', temporary: true, http: 503, summary: 'delivery queue unavailable' },
  BAL_INVALID_METADATA: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'mailbox metadata not valid (red list, description, service, responsible)',
  },
  BAL_FIELD_IMMUTABLE: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'the address, type and owner of a mailbox never change',
  },
  BAL_INVALID_TRANSITION: {
    side: 'client',
    temporary: false,
    http: 409,
    summary: 'the mailbox is not in a state that allows this',
  },
  // Publication of our mailboxes in the national directory (MSSANTE.md "Publication (write)").
  PUBLICATION_NOT_FOUND: {
    side: 'remote',
    temporary: false,
    http: 502,
    summary: 'the national directory has no resource with the owner identifier of this mailbox',
  },
  PUBLICATION_AMBIGUOUS: {
    side: 'remote',
    temporary: false,
    http: 502,
    summary: 'the owner identifier of this mailbox matches several resources of the national directory',
  },
  PUBLICATION_ENTRY_MISSING: {
    side: 'remote',
    temporary: false,
    http: 502,
    summary: 'the national directory holds no entry of this mailbox to replace',
  },
  PUBLICATION_REJECTED: {
    side: 'remote',
    temporary: false,
    http: 502,
    summary: 'the national directory refused the change of this mailbox',
  },
  PUBLICATION_UNAVAILABLE: {
    side: 'remote',
    temporary: true,
    http: 503,
    summary: 'the national directory cannot be reached or failed; the change is retried',
  },
  PUBLICATION_DISABLED: {
    side: 'client',
    temporary: false,
    http: 409,
    summary: 'publication to the national directory is not enabled (publication.enabled)',
  },
  DRIFT_REPORT_MISSING: {
    side: 'client',
    temporary: false,
    http: 404,
    summary: 'no directory drift report yet: it is made after each refresh of the BAL extraction',
  },
  // Rights on mailboxes (ARCHITECTURE.md §4: delegate, member, application).
  RIGHT_INVALID: { side: 'client', temporary: false, http: 400, summary: 'right request not valid' },
  RIGHT_NOT_APPLICABLE: {
    side: 'client',
    temporary: false,
    http: 409,
    summary: 'this right does not apply to this mailbox',
  },
  RIGHT_FORBIDDEN: {
    side: 'client',
    temporary: false,
    http: 403,
    summary: 'this person may not change rights on this mailbox',
  },
  RIGHT_NOT_FOUND: { side: 'client', temporary: false, http: 404, summary: 'no such right on this mailbox' },
  // Operator-managed secrets of mailboxes (PLAIN/LOGIN, ARCHITECTURE.md §4).
  SECRET_NOT_ALLOWED: {
    side: 'client',
    temporary: false,
    http: 409,
    summary: 'the configuration allows no secret for this mailbox type',
  },
  SECRET_INVALID: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'secret too short, too long or with characters a login cannot carry',
  },
  SECRET_NOT_FOUND: { side: 'client', temporary: false, http: 404, summary: 'this mailbox has no secret' },
  // Issue #14 item 9: the lifecycle clock override of the development walk-through.
  LIFECYCLE_RUN_DEVELOPMENT_ONLY: {
    side: 'client',
    temporary: false,
    http: 403,
    summary:
      'a lifecycle run at another instant is for development mode only; production runs daily at the real time',
  },
  REQUEST_INVALID: { side: 'client', temporary: false, http: 400, summary: 'request not valid' },
  UNAUTHENTICATED: { side: 'client', temporary: false, http: 401, summary: 'authentication required' },
  ROUTE_NOT_FOUND: { side: 'client', temporary: false, http: 404, summary: 'no such route' },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: {
    side: 'client',
    temporary: false,
    http: 415,
    summary: 'request body must be application/json',
  },
  REQUEST_TOO_LARGE: { side: 'client', temporary: false, http: 413, summary: 'request body too large' },
  // Mailbox lifecycle (issue #6: inactivity, warnings, indicators).
  LIFECYCLE_BUSY: {
    side: 'server',
    temporary: true,
    http: 409,
    summary: 'another gateway process is running the lifecycle job; it is taken up again later',
  },
  INDICATORS_MONTH_INVALID: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'not a month: give YYYY-MM',
  },
  // Local failures that used to be plain errors: each keeps its own message, the code says the kind.
  CLI_INPUT_INVALID: {
    side: 'client',
    temporary: false,
    http: 400,
    summary: 'a file or input the command line reads is missing or not valid',
  },
  JOURNAL_CHAIN_BROKEN: {
    side: 'server',
    temporary: false,
    http: 500,
    summary: 'an audit journal entry was edited or removed (its hash chain is broken)',
  },
  ADMIN_API_REFUSED: {
    side: 'remote',
    temporary: false,
    http: 502,
    summary: 'the admin API refused or failed the request',
  },
  ADMIN_API_UNREACHABLE: {
    side: 'remote',
    temporary: true,
    http: 502,
    summary: 'the admin API cannot be reached',
  },
  IMAP_COMMAND_SYNTAX: { side: 'client', temporary: false, http: 400, summary: 'IMAP command syntax error' },
  STORE_LOGIN_REFUSED: {
    side: 'server',
    temporary: true,
    http: 503,
    summary: 'the mailbox store refused the master login',
  },
  MESSAGE_UNREADABLE: {
    side: 'server',
    temporary: true,
    http: 500,
    summary: 'the message to deliver could not be read',
  },
  RELAY_ATTEMPT_FAILED: {
    side: 'remote',
    temporary: true,
    http: 502,
    summary: 'reaching a remote operator failed; the attempt is retried',
  },
  RELAY_ATTEMPT_REFUSED: {
    side: 'remote',
    temporary: false,
    http: 502,
    summary: 'reaching a remote operator failed for good',
  },
  DER_INVALID: { side: 'remote', temporary: false, http: 422, summary: 'not valid DER' },
  MIRROR_COPY_REPLACED: {
    side: 'server',
    temporary: true,
    http: 409,
    summary: 'the mirror copy to apply is gone: a newer one replaced it',
  },
} as const satisfies Record<string, ErrorCodeInfo>;

export type ErrorCode = keyof typeof ERROR_CODES;
