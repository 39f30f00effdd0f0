/** Plain IMAP endpoint of the store (loopback or a trusted network; TLS is the gateway's job). */
export interface ImapEndpoint {
  readonly host: string;
  readonly port: number;
}

/** LMTP endpoint of the store: TCP, or a unix socket (the embedded Dovecot). */
export type LmtpEndpoint = { readonly host: string; readonly port: number } | { readonly path: string };

/** The master user the gateway logs in as, on behalf of any mailbox. */
export interface MasterCredentials {
  readonly user: string;
  readonly password: string;
}

/** For logs and error details: where we tried to connect (never credentials). */
export function describeEndpoint(endpoint: LmtpEndpoint | ImapEndpoint): string {
  return 'path' in endpoint ? `unix:${endpoint.path}` : `${endpoint.host}:${endpoint.port}`;
}
