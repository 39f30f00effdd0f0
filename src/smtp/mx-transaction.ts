import type { SMTPServerSession } from 'smtp-server';
import type { IndicatorHeaders, SpoolEnvelope } from '../delivery/index.js';

export interface AcceptedTransaction {
  readonly id: string;
  readonly now: Date;
  readonly size: number;
  readonly channel: SpoolEnvelope['channel'];
  readonly messageId?: string;
  /** The headers the indicators count, captured while the message streamed in. */
  readonly headers?: IndicatorHeaders;
  readonly peerDn?: string;
  readonly tls?: { readonly protocol: string; readonly cipher: string };
  /** Where each recipient goes; local when absent (the MX path only delivers locally). */
  readonly routeOf?: (address: string) => 'local' | 'relay';
}

/** The spool envelope of an accepted transaction: envelope, DSN parameters, peer and TLS facts. */
export function spoolEnvelopeOf(session: SMTPServerSession, t: AcceptedTransaction): SpoolEnvelope {
  const env = session.envelope;
  const ret = env.dsn?.ret ?? undefined;
  const envid = env.dsn?.envid ?? undefined;
  return {
    id: t.id,
    version: 1,
    receivedAt: t.now.toISOString(),
    mailFrom: env.mailFrom === false ? '' : env.mailFrom.address,
    ...(ret || envid ? { dsn: { ...(ret ? { ret } : {}), ...(envid ? { envid } : {}) } } : {}),
    channel: t.channel,
    size: t.size,
    ...(t.messageId ? { messageId: t.messageId } : {}),
    ...(t.headers ? { headers: t.headers } : {}),
    peer: {
      address: session.remoteAddress,
      helo: session.hostNameAppearsAs,
      ...(t.peerDn ? { dn: t.peerDn } : {}),
      ...(t.tls ? { tlsProtocol: t.tls.protocol, tlsCipher: t.tls.cipher } : {}),
    },
    // DSN parameters (RFC 3461) are kept for delivery notifications.
    recipients: env.rcptTo.map((r) => {
      const notify = r.dsn?.notify;
      const orcpt = r.dsn?.orcpt;
      return {
        address: r.address.toLowerCase(),
        route: t.routeOf?.(r.address.toLowerCase()) ?? 'local',
        state: 'pending' as const,
        attempts: 0,
        ...(notify || orcpt ? { dsn: { ...(notify ? { notify } : {}), ...(orcpt ? { orcpt } : {}) } } : {}),
      };
    }),
    nextAttemptAt: t.now.toISOString(),
  };
}

/**
 * A bounded metric label for a failed TLS handshake (smtp-server reports it as a server `error`), or
 * undefined when the error is not a TLS one. Decided on `code` only, never on the message (which
 * smtp-server may rewrite): Node names OpenSSL failures `ERR_SSL_<REASON>` (e.g.
 * ERR_SSL_UNSUPPORTED_PROTOCOL, ERR_SSL_NO_SHARED_CIPHER, ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE)
 * and its own `ERR_TLS_*`; smtp-server tags what it raises during the upgrade `TLSError` or
 * `SocketError`.
 */
export function tlsFailureReason(err: Error & { code?: string }): string | undefined {
  const code = err.code ?? '';
  if (!/^ERR_(SSL|TLS)_/.test(code) && code !== 'TLSError' && code !== 'SocketError') return undefined;
  if (/VERSION|PROTOCOL/.test(code)) return 'protocol';
  if (/CIPHER/.test(code)) return 'cipher';
  if (/CERTIFICATE/.test(code)) return 'certificate';
  return 'other';
}
