import type { ErrorCode } from '../errors/index.js';

/**
 * The one table that turns error codes into IMAP replies (STYLE.md convention 5), with the response
 * codes of RFC 5530 so that a client can tell a wrong credential (ask the user again) from a mailbox
 * it may not open, an expired token (refresh it), a missing TLS layer, a temporary outage (retry
 * later, keep the credential) and an administrative block (call the operator). Texts are ASCII.
 *
 * Choice for rate limiting (AUTH_RATE_LIMITED): `NO [UNAVAILABLE]`, not `[LIMIT]`. RFC 5530 defines
 * LIMIT for implementation limits on data (number of flags, message size); UNAVAILABLE is the
 * temporary refusal, and clients treat it as "try again later" without discarding the credential.
 */
export type ImapResponseCode =
  | 'AUTHENTICATIONFAILED'
  | 'AUTHORIZATIONFAILED'
  | 'EXPIRED'
  | 'PRIVACYREQUIRED'
  | 'UNAVAILABLE'
  | 'CONTACTADMIN'
  | 'CANNOT';

export interface ImapFailure {
  /** NO: the command failed; BAD: the client sent something malformed (RFC 9051 §7.1). */
  readonly status: 'NO' | 'BAD';
  readonly code?: ImapResponseCode;
  readonly text: string;
}

const RESPONSES: Partial<Record<ErrorCode, ImapFailure>> = {
  AUTH_TLS_REQUIRED: { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Use STARTTLS or the TLS port first' },
  TLS_REQUIRED: { status: 'NO', code: 'PRIVACYREQUIRED', text: 'Use STARTTLS or the TLS port first' },
  AUTH_MECHANISM_NOT_ALLOWED: {
    status: 'NO',
    code: 'CANNOT',
    text: 'This authentication mechanism is not allowed here',
  },
  AUTH_MALFORMED: { status: 'BAD', text: 'Malformed SASL response' },
  AUTH_TOKEN_INVALID: { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Access token not valid' },
  AUTH_TOKEN_EXPIRED: { status: 'NO', code: 'EXPIRED', text: 'Access token expired, get a new one' },
  AUTH_CREDENTIALS_INVALID: { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Authentication failed' },
  CERT_MISSING: { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'No client certificate presented' },
  CERT_UNTRUSTED: {
    status: 'NO',
    code: 'AUTHENTICATIONFAILED',
    text: 'Client certificate not issued by a trusted IGC-Sante authority',
  },
  CERT_REVOKED: { status: 'NO', code: 'AUTHENTICATIONFAILED', text: 'Client certificate revoked' },
  CERT_EXPIRED: { status: 'NO', code: 'EXPIRED', text: 'Client certificate outside its validity period' },
  AUTH_MAILBOX_REQUIRED: {
    status: 'NO',
    code: 'AUTHORIZATIONFAILED',
    text: 'Name the mailbox to open (SASL authorization identity)',
  },
  AUTH_NOT_AUTHORISED: {
    status: 'NO',
    code: 'AUTHORIZATIONFAILED',
    text: 'This identity may not open this mailbox',
  },
  AUTH_MAILBOX_DISABLED: {
    status: 'NO',
    code: 'CONTACTADMIN',
    text: 'Mailbox suspended, contact your operator',
  },
  AUTH_RATE_LIMITED: {
    status: 'NO',
    code: 'UNAVAILABLE',
    text: 'Too many failed attempts, try again later',
  },
  AUTH_ISSUER_UNAVAILABLE: {
    status: 'NO',
    code: 'UNAVAILABLE',
    text: 'Token issuer unavailable, try again later',
  },
  CRL_UNAVAILABLE: {
    status: 'NO',
    code: 'UNAVAILABLE',
    text: 'Revocation status unavailable, try again later',
  },
  REGISTRY_UNAVAILABLE: {
    status: 'NO',
    code: 'UNAVAILABLE',
    text: 'Mailbox directory unavailable, try again later',
  },
  STORE_UNAVAILABLE: {
    status: 'NO',
    code: 'UNAVAILABLE',
    text: 'Mailbox store unavailable, try again later',
  },
};

const FALLBACK: ImapFailure = { status: 'NO', code: 'UNAVAILABLE', text: 'Internal error, try again later' };

export function imapFailureFor(code: ErrorCode): ImapFailure {
  return RESPONSES[code] ?? FALLBACK;
}

/** `tag SP status [SP "[" code "]"] SP text CRLF` (RFC 9051 §7.1). */
export function taggedLine(
  tag: string,
  status: 'OK' | 'NO' | 'BAD' | 'BYE',
  text: string,
  code?: string,
): string {
  return `${tag} ${status} ${code === undefined ? '' : `[${code}] `}${text}\r\n`;
}

/** The tagged reply for a failure from the table. */
export function failureLine(tag: string, code: ErrorCode): string {
  const failure = imapFailureFor(code);
  return taggedLine(tag, failure.status, failure.text, failure.code);
}

/** `* BAD` when no tag could be read (RFC 9051 §7.1.3). */
export function untaggedLine(status: 'OK' | 'BAD' | 'BYE', text: string, code?: string): string {
  return taggedLine('*', status, text, code);
}
