import type { ErrorCode } from '../errors/index.js';
import { GatewayError } from '../errors/index.js';

/**
 * The one table that turns error codes into SMTP replies (STYLE.md convention 5). Enhanced status
 * codes: RFC 3463, RFC 4954, RFC 5248 registry. Texts are US-ASCII (RFC 5321 §4.2). Each trust refusal has its own code so that a peer's
 * postmaster can tell them apart in its logs.
 */
interface SmtpReply {
  readonly code: number;
  readonly enhanced: string;
  readonly text: string;
}

const REPLIES: Partial<Record<ErrorCode, SmtpReply>> = {
  TLS_REQUIRED: { code: 530, enhanced: '5.7.0', text: 'Must issue a STARTTLS command first' },
  CERT_MISSING: {
    code: 530,
    enhanced: '5.7.14',
    text: 'A client certificate issued by IGC-Sante is required on this port',
  },
  CERT_UNTRUSTED: {
    code: 550,
    enhanced: '5.7.5',
    text: 'Client certificate does not chain to a trusted IGC-Sante authority',
  },
  CERT_EXPIRED: { code: 550, enhanced: '5.7.8', text: 'Client certificate is outside its validity period' },
  CERT_REVOKED: { code: 550, enhanced: '5.7.13', text: 'Client certificate has been revoked' },
  CRL_UNAVAILABLE: {
    code: 454,
    enhanced: '4.7.0',
    text: 'Revocation status cannot be checked right now, try again later',
  },
  OPERATOR_NOT_WHITELISTED: {
    code: 550,
    enhanced: '5.7.1',
    text: 'Certificate DN is not a whitelisted MSSante operator',
  },
  SENDER_DOMAIN_NOT_AUTHORISED: {
    code: 553,
    enhanced: '5.7.1',
    text: 'Sender domain is not served by your operator certificate in the MSSante whitelist',
  },
  // Submission: authentication (RFC 4954 §6) and who may send what (ARCHITECTURE.md §4).
  AUTH_REQUIRED: { code: 530, enhanced: '5.7.0', text: 'Authentication required (STARTTLS, then AUTH)' },
  AUTH_MAILBOX_REQUIRED: {
    code: 535,
    enhanced: '5.7.8',
    text: 'Name the mailbox to open (SASL authorization identity): this credential opens several or none',
  },
  AUTH_TLS_REQUIRED: { code: 538, enhanced: '5.7.11', text: 'Encryption required: issue STARTTLS first' },
  AUTH_MECHANISM_NOT_ALLOWED: {
    code: 534,
    enhanced: '5.7.9',
    text: 'This authentication mechanism is not allowed for this mailbox',
  },
  AUTH_MALFORMED: { code: 501, enhanced: '5.5.2', text: 'Malformed authentication exchange' },
  AUTH_TOKEN_INVALID: { code: 535, enhanced: '5.7.8', text: 'Access token not valid' },
  AUTH_TOKEN_EXPIRED: { code: 535, enhanced: '5.7.8', text: 'Access token expired, get a new one' },
  AUTH_CREDENTIALS_INVALID: { code: 535, enhanced: '5.7.8', text: 'Authentication credentials invalid' },
  AUTH_NOT_AUTHORISED: { code: 535, enhanced: '5.7.8', text: 'No right to open this mailbox' },
  AUTH_MAILBOX_DISABLED: { code: 525, enhanced: '5.7.13', text: 'Mailbox suspended or closed' },
  AUTH_RATE_LIMITED: {
    code: 454,
    enhanced: '4.7.0',
    text: 'Too many failed authentications, try again later',
  },
  AUTH_ISSUER_UNAVAILABLE: {
    code: 454,
    enhanced: '4.7.0',
    text: 'Token issuer unreachable, try again later',
  },
  SEND_NOT_AUTHORISED: {
    code: 550,
    enhanced: '5.7.1',
    text: 'Your right on this mailbox does not include sending',
  },
  SENDER_NOT_ALLOWED: {
    code: 553,
    enhanced: '5.7.1',
    text: 'Envelope sender must be the mailbox you logged in to',
  },
  FROM_NOT_ALLOWED: {
    code: 554,
    enhanced: '5.7.1',
    text: 'From: must be the mailbox you logged in to (a delegate adds Sender: with a mailbox of its own)',
  },
  PATIENT_ADDRESS_INVALID: {
    code: 553,
    enhanced: '5.1.3',
    text: 'Not a valid patient mailbox: 15-digit INS with its key @patient.mssante.fr',
  },
  RECIPIENT_UNKNOWN: { code: 550, enhanced: '5.1.1', text: 'No such mailbox here' },
  RECIPIENT_SUSPENDED: { code: 550, enhanced: '5.2.1', text: 'Mailbox is suspended' },
  // Three refusals of a domain not ours, told apart so that the sender knows what to change.
  // MX port: a peer sent us mail for a domain we do not serve.
  RELAY_DENIED: {
    code: 550,
    enhanced: '5.7.1',
    text: 'Relaying denied: not a domain of ours, nor of the MSSante trust space',
  },
  RELAY_NOT_OFFERED: {
    code: 550,
    enhanced: '5.7.1',
    text: 'Relaying denied: this domain belongs to another MSSante operator, deliver to its own MX',
  },
  // Submission port: our user wrote to a domain no MSSante operator serves (MSSANTE.md "The trust space").
  RECIPIENT_OUTSIDE_TRUST_SPACE: {
    code: 550,
    enhanced: '5.7.1',
    text: 'Recipient domain is outside the MSSante trust space: only MSSante mailboxes can be reached',
  },
  BAD_ADDRESS_SYNTAX: { code: 553, enhanced: '5.1.3', text: 'Malformed address' },
  TOO_MANY_RECIPIENTS: { code: 452, enhanced: '4.5.3', text: 'Too many recipients' },
  MESSAGE_TOO_LARGE: { code: 552, enhanced: '5.3.4', text: 'Message exceeds fixed maximum message size' },
  SPOOL_FAILED: { code: 451, enhanced: '4.3.0', text: 'Message could not be stored, try again later' },
  REGISTRY_UNAVAILABLE: {
    code: 451,
    enhanced: '4.3.0',
    text: 'Mailbox directory unavailable, try again later',
  },
};

const FALLBACK: SmtpReply = {
  code: 451,
  enhanced: '4.3.0',
  text: 'Local error in processing, try again later',
};

export function smtpReplyFor(code: ErrorCode): SmtpReply {
  return REPLIES[code] ?? FALLBACK;
}

/** Error object smtp-server understands: `responseCode` plus a text that starts with the enhanced code. */
export interface SmtpHookError extends Error {
  responseCode: number;
}

export function smtpError(code: ErrorCode, detail?: string): SmtpHookError {
  const reply = smtpReplyFor(code);
  const err = new GatewayError(
    code,
    `${reply.enhanced} ${reply.text}${detail ? ` (${detail})` : ''}`,
  ) as GatewayError & SmtpHookError;
  err.responseCode = reply.code;
  return err;
}

/** Text of a reply line for logs and the journal, e.g. `550 5.7.1 Relaying denied`. */
export function replyLine(code: ErrorCode): string {
  const r = smtpReplyFor(code);
  return `${r.code} ${r.enhanced} ${r.text}`;
}
