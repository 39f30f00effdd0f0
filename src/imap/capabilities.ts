import type { SaslMechanism, TlsFacts } from '../auth/index.js';

/**
 * What the gateway advertises before login (RFC 9051 §7.2.2). After login the client sees the store's
 * own list, unchanged (ARCHITECTURE.md §5: only capabilities the store really has).
 *
 * - IMAP4rev1: the syntax served before login is common to RFC 3501 and RFC 9051; the store decides
 *   the revision spoken after login.
 * - SASL-IR (RFC 4959), ID (RFC 2971), LITERAL+ (RFC 7888: `{n+}` literals are accepted up to
 *   maxLiteralBytes; a larger one ends the connection).
 * - STARTTLS only on plaintext. No authentication happens before TLS (MSSANTE.md "Client access":
 *   TLS, then SASL), so before TLS no AUTH= is advertised and LOGINDISABLED is (RFC 9051 §6.2.3).
 * - After TLS: AUTH=<m> for each mechanism the authenticator offers on this connection; LOGIN is
 *   enabled only when it offers PLAIN or LOGIN (an operator-managed secret), else LOGINDISABLED.
 */
export function preauthMechanisms(
  tls: TlsFacts,
  offered: readonly SaslMechanism[],
): readonly SaslMechanism[] {
  return tls.secure ? offered : [];
}

export function loginCommandAllowed(mechanisms: readonly SaslMechanism[]): boolean {
  return mechanisms.includes('PLAIN') || mechanisms.includes('LOGIN');
}

export function preauthCapabilities(tls: TlsFacts, mechanisms: readonly SaslMechanism[]): string {
  const caps = ['IMAP4rev1', 'SASL-IR', 'ID', 'LITERAL+'];
  if (!tls.secure) caps.push('STARTTLS');
  if (!tls.secure || !loginCommandAllowed(mechanisms)) caps.push('LOGINDISABLED');
  for (const mechanism of mechanisms) caps.push(`AUTH=${mechanism}`);
  return caps.join(' ');
}
