import { escapeHtml } from './html.js';
import type { ClientEndpoints } from './portal-deps.js';

/** The identity provider's endpoints a mail client needs for OAuth2. */
export interface OAuthEndpoints {
  readonly issuer: string;
  readonly authorizationEndpoint: string;
  readonly tokenEndpoint: string;
  readonly scopes: readonly string[];
}

/**
 * Thunderbird's autoconfiguration document (the "config-v1.1.xml" format of its ISP database, served
 * at /.well-known/autoconfig/mail/config-v1.1.xml and /mail/config-v1.1.xml?emailaddress=...):
 * IMAP with implicit TLS and STARTTLS, submission with implicit TLS and STARTTLS, OAuth2 against Pro
 * Santé Connect. The login name is the mailbox address (ARCHITECTURE.md §4).
 */
export function autoconfigXml(
  domains: readonly string[],
  endpoints: ClientEndpoints,
  oauth: OAuthEndpoints,
): string {
  const x = escapeHtml;
  const host = x(endpoints.host);
  const server = (kind: 'incomingServer' | 'outgoingServer', type: string, port: number, socket: string) =>
    `    <${kind} type="${type}">
      <hostname>${host}</hostname>
      <port>${port}</port>
      <socketType>${socket}</socketType>
      <username>%EMAILADDRESS%</username>
      <authentication>OAuth2</authentication>
    </${kind}>`;
  return `<?xml version="1.0" encoding="UTF-8"?>
<clientConfig version="1.1">
  <emailProvider id="${x(domains[0] ?? endpoints.host)}">
${domains.map((d) => `    <domain>${x(d)}</domain>`).join('\n')}
    <displayName>Messagerie sécurisée de santé (MSSanté)</displayName>
    <displayShortName>MSSanté</displayShortName>
${server('incomingServer', 'imap', endpoints.imapTls, 'SSL')}
${server('incomingServer', 'imap', endpoints.imapStarttls, 'STARTTLS')}
${server('outgoingServer', 'smtp', endpoints.submissionTls, 'SSL')}
${server('outgoingServer', 'smtp', endpoints.submissionStarttls, 'STARTTLS')}
  </emailProvider>
  <oAuth2>
    <issuer>${x(new URL(oauth.issuer).host)}</issuer>
    <scope>${x(oauth.scopes.join(' '))}</scope>
    <authURL>${x(oauth.authorizationEndpoint)}</authURL>
    <tokenURL>${x(oauth.tokenEndpoint)}</tokenURL>
  </oAuth2>
</clientConfig>
`;
}
