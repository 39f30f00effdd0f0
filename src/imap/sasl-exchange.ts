import {
  LOGIN_CHALLENGES,
  decodeExternal,
  decodeLoginField,
  decodeOauthbearer,
  decodePlain,
  decodeXoauth2,
  isAuthFailure,
  type AuthRequest,
  type SaslMechanism,
  type TlsFacts,
} from '../auth/index.js';

/**
 * The AUTHENTICATE conversation (RFC 9051 §6.2.2): an optional initial response on the command line
 * (SASL-IR, RFC 4959), otherwise an empty `+ ` challenge and the client's answer; two challenges for
 * LOGIN. The client cancels with `*`. Messages are decoded by auth/'s codecs; what comes out is the
 * AuthRequest for the authenticator. The I/O is behind `SaslIo`, so the steps are testable alone.
 *
 * The login name is the mailbox (ARCHITECTURE.md §4): XOAUTH2 `user=`, OAUTHBEARER and PLAIN authzid
 * (PLAIN's authcid when the authzid is empty), LOGIN's user name, EXTERNAL's authzid (absent: the
 * authenticator derives it from the certificate).
 */
export interface SaslIo {
  /** Sends `+ <text>` (a base64 challenge, or empty). */
  challenge(base64: string): void;
  /** The client's next response line as sent; undefined when the connection ended or broke a limit. */
  response(): Promise<string | undefined>;
}

export interface SaslContext {
  readonly tls: TlsFacts;
  readonly remote: string;
}

export type SaslResult =
  | { readonly kind: 'request'; readonly request: AuthRequest }
  /** The client's message is malformed (AUTH_MALFORMED): tagged BAD (RFC 9051 §6.2.2). */
  | { readonly kind: 'malformed'; readonly reason: string }
  /** The client answered `*`: tagged BAD (RFC 9051 §6.2.2). */
  | { readonly kind: 'cancelled' }
  | { readonly kind: 'closed' };

export const SASL_CANCEL = '*';

/** Where the mechanism has no initial response, an empty challenge asks for the first message. */
async function firstMessage(initial: string | undefined, io: SaslIo): Promise<string | undefined> {
  if (initial !== undefined) return initial;
  io.challenge('');
  return io.response();
}

function decode(
  mechanism: Exclude<SaslMechanism, 'LOGIN'>,
  message: string,
  base: Pick<AuthRequest, 'channel' | 'tls' | 'remote'>,
): AuthRequest {
  switch (mechanism) {
    case 'XOAUTH2':
    case 'OAUTHBEARER': {
      const d = mechanism === 'XOAUTH2' ? decodeXoauth2(message) : decodeOauthbearer(message);
      return { ...base, mechanism, bal: d.bal, token: d.token };
    }
    case 'PLAIN': {
      const d = decodePlain(message);
      return { ...base, mechanism, bal: d.authzid ?? d.authcid, authcid: d.authcid, password: d.password };
    }
    case 'EXTERNAL':
      return { ...base, mechanism, bal: decodeExternal(message).authzid };
  }
}

async function loginMechanism(
  initial: string | undefined,
  io: SaslIo,
  base: Pick<AuthRequest, 'channel' | 'tls' | 'remote'>,
): Promise<SaslResult> {
  // Some clients send the user name as initial response; otherwise ask for it (draft-murchison-sasl-login).
  let userText = initial;
  if (userText === undefined) {
    io.challenge(LOGIN_CHALLENGES.username);
    userText = await io.response();
  }
  if (userText === undefined) return { kind: 'closed' };
  if (userText === SASL_CANCEL) return { kind: 'cancelled' };
  const user = decodeLoginField(userText, 'username');
  io.challenge(LOGIN_CHALLENGES.password);
  const passwordText = await io.response();
  if (passwordText === undefined) return { kind: 'closed' };
  if (passwordText === SASL_CANCEL) return { kind: 'cancelled' };
  const password = decodeLoginField(passwordText, 'password');
  return { kind: 'request', request: { ...base, mechanism: 'LOGIN', bal: user, authcid: user, password } };
}

/** Runs the client side of the exchange up to the AuthRequest. Never throws for client input. */
export async function runSaslExchange(
  mechanism: SaslMechanism,
  initial: string | undefined,
  io: SaslIo,
  context: SaslContext,
): Promise<SaslResult> {
  const base = { channel: 'imap' as const, tls: context.tls, remote: context.remote };
  try {
    if (mechanism === 'LOGIN') return await loginMechanism(initial, io, base);
    const message = await firstMessage(initial, io);
    if (message === undefined) return { kind: 'closed' };
    if (message === SASL_CANCEL) return { kind: 'cancelled' };
    return { kind: 'request', request: decode(mechanism, message, base) };
  } catch (err) {
    if (isAuthFailure(err)) return { kind: 'malformed', reason: err.reason };
    throw err;
  }
}

/**
 * After a refused XOAUTH2 or OAUTHBEARER attempt, the server sends the error as a challenge and waits
 * for the client's dummy answer (an empty line for XOAUTH2, `AQ==` for OAUTHBEARER, RFC 7628 §3.2.3)
 * before the tagged NO. Whatever the client answers, the attempt has failed; `*` cancels (BAD).
 */
export async function sendSaslError(json: string, io: SaslIo): Promise<'answered' | 'cancelled' | 'closed'> {
  io.challenge(Buffer.from(json, 'utf8').toString('base64'));
  const answer = await io.response();
  if (answer === undefined) return 'closed';
  return answer === SASL_CANCEL ? 'cancelled' : 'answered';
}

const MECHANISMS: readonly SaslMechanism[] = ['XOAUTH2', 'OAUTHBEARER', 'EXTERNAL', 'PLAIN', 'LOGIN'];

/** The mechanism the client named, if it is one we know and the authenticator offers here. */
export function offeredMechanism(name: string, offered: readonly SaslMechanism[]): SaslMechanism | undefined {
  const known = MECHANISMS.find((m) => m === name.toUpperCase());
  return known !== undefined && offered.includes(known) ? known : undefined;
}
