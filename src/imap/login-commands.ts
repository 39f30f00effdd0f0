import type { AuthRequest, SaslMechanism, TlsFacts } from '../auth/index.js';
import { loginCommandAllowed } from './capabilities.js';
import { type LoginContext, type LoginResult, performLogin } from './login-flow.js';
import { failureLine, taggedLine } from './responses.js';
import { type SaslIo, offeredMechanism, runSaslExchange } from './sasl-exchange.js';

/**
 * AUTHENTICATE (RFC 9051 §6.2.2, RFC 4959) and LOGIN (RFC 9051 §6.2.3): checks that belong to the
 * protocol (TLS first, a mechanism offered here, a well-formed SASL exchange), then the login flow.
 * Refusals made here never reach the authenticator, so they are journaled here.
 */
export interface LoginPort extends LoginContext {
  readonly tls: TlsFacts;
  readonly remote: string;
  /** Mechanisms offered on this connection (none before TLS). */
  readonly mechanisms: readonly SaslMechanism[];
  readonly sasl: SaslIo;
}

type EarlyRefusal = 'AUTH_TLS_REQUIRED' | 'AUTH_MECHANISM_NOT_ALLOWED' | 'AUTH_MALFORMED';

function refuseEarly(
  port: LoginPort,
  tag: string,
  mechanism: string,
  code: EarlyRefusal,
  reason: string,
): LoginResult {
  const fields = {
    event: 'imap.login.refused',
    mechanism: mechanism.slice(0, 32),
    code,
    reason,
    ...port.connection,
  };
  port.journal.record(fields);
  port.log.info(fields, 'login refused');
  const known = offeredMechanism(mechanism, ['XOAUTH2', 'OAUTHBEARER', 'EXTERNAL', 'PLAIN', 'LOGIN']);
  if (known !== undefined) port.observer.login(known, code, 0);
  port.send(failureLine(tag, code));
  return { kind: 'refused' };
}

export async function loginCommand(
  port: LoginPort,
  tag: string,
  user: string,
  password: string,
): Promise<LoginResult> {
  // RFC 9051 §6.2.3 and §11.1: no clear-text password before TLS (LOGINDISABLED is advertised).
  if (!port.tls.secure) return refuseEarly(port, tag, 'LOGIN', 'AUTH_TLS_REQUIRED', 'tls_required');
  if (!loginCommandAllowed(port.mechanisms)) {
    return refuseEarly(port, tag, 'LOGIN', 'AUTH_MECHANISM_NOT_ALLOWED', 'login_disabled');
  }
  const request: AuthRequest = {
    mechanism: port.mechanisms.includes('LOGIN') ? 'LOGIN' : 'PLAIN',
    bal: user,
    authcid: user,
    password,
    channel: 'imap',
    tls: port.tls,
    remote: port.remote,
  };
  return performLogin(port, tag, request, undefined);
}

export async function authenticateCommand(
  port: LoginPort,
  tag: string,
  name: string,
  initialResponse: string | undefined,
): Promise<LoginResult> {
  if (!port.tls.secure) return refuseEarly(port, tag, name, 'AUTH_TLS_REQUIRED', 'tls_required');
  const mechanism = offeredMechanism(name, port.mechanisms);
  if (mechanism === undefined) {
    // RFC 9051 §6.2.2: NO for a mechanism the server does not support (here: does not offer).
    return refuseEarly(port, tag, name, 'AUTH_MECHANISM_NOT_ALLOWED', 'mechanism_not_offered');
  }
  const result = await runSaslExchange(mechanism, initialResponse, port.sasl, port);
  if (!port.isOpen()) return { kind: 'closed' };
  switch (result.kind) {
    case 'closed':
      return { kind: 'closed' };
    case 'cancelled':
      port.send(taggedLine(tag, 'BAD', 'Authentication cancelled'));
      return { kind: 'refused' };
    case 'malformed':
      return refuseEarly(port, tag, mechanism, 'AUTH_MALFORMED', result.reason);
    case 'request':
      return performLogin(port, tag, result.request, port.sasl);
  }
}
