import { ERROR_CODES, type ErrorCode } from '../errors/index.js';
import { AuthFailure } from './auth-failure.js';
import type { SaslMechanism } from './types.js';

/**
 * SASL message codecs for the mechanisms of MSSANTE.md "Client access": no I/O, no state. The
 * protocol front ends (IMAP AUTHENTICATE, SMTP AUTH) hand over the base64 text the client sent and
 * get a decoded message, or an AuthFailure AUTH_MALFORMED whose `reason` names what was wrong. The
 * messages of errors never quote the client's response: it may hold a token or a password.
 */

/** Largest decoded client response: a Pro Santé Connect access token is a few kilobytes. */
export const SASL_MAX_RESPONSE_BYTES = 16 * 1024;
/** RFC 4616 §2: identities of up to 255 octets must be accepted; a mailbox address is at most 254. */
export const SASL_MAX_IDENTITY_BYTES = 255;
/** Longest password we hash: bounds the work an unauthenticated client can ask of scrypt. */
export const SASL_MAX_PASSWORD_BYTES = 1024;

/** The de-facto LOGIN challenges: base64 of `Username:` and `Password:`. */
export const LOGIN_CHALLENGES = { username: 'VXNlcm5hbWU6', password: 'UGFzc3dvcmQ6' } as const;

export interface BearerResponse {
  /** The mailbox to open: XOAUTH2 `user=`, OAUTHBEARER authzid (`a=`). */
  readonly bal: string | undefined;
  /** The access token. Never logged. */
  readonly token: string;
  /** OAUTHBEARER `host` and `port` (RFC 7628 §3.1), informative only. */
  readonly host?: string;
  readonly port?: number;
}

export interface PlainResponse {
  readonly authzid: string | undefined;
  readonly authcid: string;
  /** Never logged. */
  readonly password: string;
}

const malformed = (reason: string, message: string): AuthFailure =>
  new AuthFailure('AUTH_MALFORMED', reason, message);

// RFC 4648 §4 alphabet with padding, nothing else (no white space, no URL-safe letters).
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes a client response. `=` alone is an empty response (RFC 4954 §4, RFC 4959 §3); `*`
 * (cancel) is the front end's business and arrives here as malformed.
 */
export function decodeSaslBase64(text: string, maxBytes = SASL_MAX_RESPONSE_BYTES): Buffer {
  const trimmed = text.trim();
  if (trimmed === '=' || trimmed === '') return Buffer.alloc(0);
  if (trimmed.length > Math.ceil(maxBytes / 3) * 4) {
    throw malformed('oversize', `SASL response longer than ${maxBytes} bytes`);
  }
  if (!BASE64.test(trimmed)) throw malformed('bad_base64', 'SASL response is not base64 (RFC 4648 §4)');
  return Buffer.from(trimmed, 'base64');
}

function utf8(bytes: Buffer, what: string): string {
  try {
    return UTF8.decode(bytes);
  } catch {
    throw malformed('bad_utf8', `${what} is not UTF-8`);
  }
}

// RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; the scheme is case-insensitive (RFC 7235 §2.1).
const BEARER = /^bearer +([A-Za-z0-9\-._~+/]+=*)$/i;

function bearerToken(value: string | undefined, mechanism: string): string {
  if (value === undefined) throw malformed('no_auth', `${mechanism} response has no auth= field`);
  const m = BEARER.exec(value);
  if (!m?.[1]) throw malformed('not_bearer', `${mechanism} auth= field is not "Bearer <token>"`);
  return m[1];
}

function mailboxName(value: string | undefined, mechanism: string): string | undefined {
  if (value === undefined || value === '') return undefined;
  // No white space or control characters: an address has none (RFC 5321 §4.1.2).
  if (
    Buffer.byteLength(value) > SASL_MAX_IDENTITY_BYTES ||
    [...value].some((c) => c <= ' ' || c === '\x7f')
  ) {
    throw malformed('bad_mailbox', `${mechanism} names a mailbox that cannot be an address`);
  }
  return value;
}

/**
 * `key=value` fields separated by \x01, the body shared by XOAUTH2 and OAUTHBEARER once the final
 * `\x01\x01` is removed. A key may appear once.
 */
function kvPairs(body: string, mechanism: string, keySyntax: RegExp): Map<string, string> {
  const fields = new Map<string, string>();
  for (const part of body.split('\x01')) {
    const eq = part.indexOf('=');
    const key = eq < 0 ? '' : part.slice(0, eq);
    if (!keySyntax.test(key)) throw malformed('bad_field', `${mechanism} response has a malformed field`);
    if (fields.has(key)) throw malformed('duplicate_field', `${mechanism} response repeats ${key}=`);
    fields.set(key, part.slice(eq + 1));
  }
  return fields;
}

/**
 * XOAUTH2 initial response (Google's SASL XOAUTH2 protocol, as MSSanté clients send it):
 * base64(`user=` BAL `\x01auth=Bearer ` token `\x01\x01`).
 */
export function decodeXoauth2(text: string): BearerResponse {
  const message = utf8(decodeSaslBase64(text), 'XOAUTH2 response');
  if (!message.endsWith('\x01\x01') || message.length < 3) {
    throw malformed('xoauth2_unterminated', 'XOAUTH2 response does not end with \\x01\\x01');
  }
  const fields = kvPairs(message.slice(0, -2), 'XOAUTH2', /^[a-z]+$/);
  const user = fields.get('user');
  if (user === undefined) throw malformed('xoauth2_no_user', 'XOAUTH2 response has no user= field');
  return { bal: mailboxName(user, 'XOAUTH2'), token: bearerToken(fields.get('auth'), 'XOAUTH2') };
}

// RFC 7628 §3.1: value = *(VCHAR / SP / HTAB / CR / LF); key = 1*(ALPHA).
const OAUTHBEARER_VALUE = /^[\x21-\x7e \t\r\n]*$/;

/** RFC 5801 §4 saslname: `,` and `=` travel as `=2C` and `=3D`; any other `=` is an error. */
function decodeSaslname(value: string): string {
  if (/=(?!2C|3D)/i.test(value) || value.includes(',')) {
    throw malformed('bad_authzid', 'OAUTHBEARER authzid is not a valid saslname (RFC 5801 §4)');
  }
  return value.replace(/=2C/gi, ',').replace(/=3D/gi, '=');
}

/** RFC 7628 §3.1 gs2-header: `n,` or `y,` (no channel binding), optional `a=authzid`, then `,`. */
function parseGs2Header(header: string): string | undefined {
  const m = /^([ny]),(?:a=([^,]*))?,$/.exec(header);
  if (!m) {
    const reason = header.startsWith('p=') ? 'channel_binding_unsupported' : 'bad_gs2_header';
    throw malformed(reason, 'OAUTHBEARER response does not start with a GS2 header "n,a=<mailbox>,"');
  }
  return m[2] === undefined ? undefined : decodeSaslname(m[2]);
}

/**
 * OAUTHBEARER initial client response (RFC 7628 §3.1):
 * gs2-header \x01 *(key=value \x01) \x01, with `auth=Bearer <token>` among the pairs.
 */
export function decodeOauthbearer(text: string): BearerResponse {
  const message = utf8(decodeSaslBase64(text), 'OAUTHBEARER response');
  const sep = message.indexOf('\x01');
  if (sep < 0) throw malformed('bad_gs2_header', 'OAUTHBEARER response has no \\x01 after its GS2 header');
  const authzid = parseGs2Header(message.slice(0, sep));
  const rest = message.slice(sep + 1);
  if (!rest.endsWith('\x01\x01') || rest.length < 3) {
    throw malformed('oauthbearer_unterminated', 'OAUTHBEARER response does not end with \\x01\\x01');
  }
  const fields = kvPairs(rest.slice(0, -2), 'OAUTHBEARER', /^[A-Za-z]+$/);
  for (const value of fields.values()) {
    if (!OAUTHBEARER_VALUE.test(value)) throw malformed('bad_field', 'OAUTHBEARER field value not allowed');
  }
  const host = fields.get('host');
  const port = fields.get('port');
  if (port !== undefined && !(/^[0-9]{1,5}$/.test(port) && Number(port) > 0 && Number(port) < 65536)) {
    throw malformed('bad_port', 'OAUTHBEARER port= is not a port number');
  }
  return {
    bal: mailboxName(authzid, 'OAUTHBEARER'),
    token: bearerToken(fields.get('auth'), 'OAUTHBEARER'),
    ...(host === undefined ? {} : { host }),
    ...(port === undefined ? {} : { port: Number(port) }),
  };
}

/** RFC 7628 §3.2.3: after the server's error challenge the client sends a lone \x01 (base64 `AQ==`). */
export function isOauthbearerErrorAck(text: string): boolean {
  try {
    const bytes = decodeSaslBase64(text, 16);
    return bytes.length === 1 && bytes[0] === 0x01;
  } catch {
    return false;
  }
}

function utf8Field(bytes: Buffer, what: string, max: number): string {
  if (bytes.length > max) throw malformed('oversize', `${what} longer than ${max} bytes`);
  return utf8(bytes, what);
}

/** PLAIN (RFC 4616 §2): [authzid] NUL authcid NUL passwd; authcid and passwd are not empty. */
export function decodePlain(text: string): PlainResponse {
  const bytes = decodeSaslBase64(text);
  const first = bytes.indexOf(0);
  const second = first < 0 ? -1 : bytes.indexOf(0, first + 1);
  if (first < 0 || second < 0 || bytes.indexOf(0, second + 1) >= 0) {
    throw malformed('plain_fields', 'PLAIN response must be authzid NUL authcid NUL password (RFC 4616 §2)');
  }
  const authzid = utf8Field(bytes.subarray(0, first), 'PLAIN authzid', SASL_MAX_IDENTITY_BYTES);
  const authcid = utf8Field(bytes.subarray(first + 1, second), 'PLAIN authcid', SASL_MAX_IDENTITY_BYTES);
  const password = utf8Field(bytes.subarray(second + 1), 'PLAIN password', SASL_MAX_PASSWORD_BYTES);
  if (authcid === '') throw malformed('plain_no_authcid', 'PLAIN authentication identity is empty');
  if (password === '') throw malformed('plain_no_password', 'PLAIN password is empty');
  return { authzid: authzid === '' ? undefined : authzid, authcid, password };
}

/** One LOGIN answer (user name or password): base64 UTF-8 text without NUL. */
export function decodeLoginField(text: string, field: 'username' | 'password'): string {
  const max = field === 'username' ? SASL_MAX_IDENTITY_BYTES : SASL_MAX_PASSWORD_BYTES;
  const value = utf8Field(decodeSaslBase64(text), `LOGIN ${field}`, max);
  if (value === '' || value.includes('\0'))
    throw malformed('login_field', `LOGIN ${field} is empty or has NUL`);
  return value;
}

/**
 * EXTERNAL (RFC 4422 Appendix A): the response is the authorization identity, possibly empty (`=`),
 * in which case the server derives it from the certificate.
 */
export function decodeExternal(text: string): { readonly authzid: string | undefined } {
  const authzid = utf8Field(decodeSaslBase64(text), 'EXTERNAL authzid', SASL_MAX_IDENTITY_BYTES);
  if (authzid.includes('\0')) throw malformed('external_nul', 'EXTERNAL authzid holds a NUL');
  return { authzid: authzid === '' ? undefined : authzid };
}

/**
 * The XOAUTH2 error challenge, in the style of Google's: `{"status":"401","schemes":"bearer",
 * "scope":"openid"}`. The status is the HTTP status of the error code.
 */
export function xoauth2ErrorChallenge(code: ErrorCode, scope = 'openid'): string {
  return JSON.stringify({ status: String(ERROR_CODES[code].http), schemes: 'bearer', scope });
}

/** RFC 6750 §3.1 error codes, as RFC 7628 §3.2.2 carries them in `status`. */
const INVALID_REQUEST: ReadonlySet<ErrorCode> = new Set(['AUTH_MALFORMED', 'AUTH_MAILBOX_REQUIRED']);
/** The token is good but opens nothing here. */
const INSUFFICIENT_SCOPE: ReadonlySet<ErrorCode> = new Set([
  'AUTH_NOT_AUTHORISED',
  'AUTH_MAILBOX_DISABLED',
  'AUTH_MECHANISM_NOT_ALLOWED',
]);

function oauthStatus(code: ErrorCode): 'invalid_request' | 'invalid_token' | 'insufficient_scope' {
  if (INVALID_REQUEST.has(code)) return 'invalid_request';
  if (INSUFFICIENT_SCOPE.has(code)) return 'insufficient_scope';
  return 'invalid_token';
}

/** RFC 7628 §3.2.2 server error: `{"status":...,"scope":"openid","openid-configuration":URL}`. */
export function oauthbearerErrorChallenge(
  code: ErrorCode,
  openidConfiguration?: string,
  scope = 'openid',
): string {
  return JSON.stringify({
    status: oauthStatus(code),
    scope,
    ...(openidConfiguration === undefined ? {} : { 'openid-configuration': openidConfiguration }),
  });
}

/** The error challenge a token mechanism sends before failing; undefined for the others. */
export function saslErrorChallenge(
  mechanism: SaslMechanism,
  code: ErrorCode,
  openidConfiguration?: string,
): string | undefined {
  if (mechanism === 'XOAUTH2') return xoauth2ErrorChallenge(code);
  if (mechanism === 'OAUTHBEARER') return oauthbearerErrorChallenge(code, openidConfiguration);
  return undefined;
}
