import type { SMTPServerOptions } from 'smtp-server';
import type { Config } from '../config/index.js';
import { type TrustMaterial, tlsProfile } from '../pki/index.js';

/** Our certificate, the authorities and CRLs: what a TLS context of ours is made of. */
export function secureContextOf(
  trust: TrustMaterial,
): Pick<SMTPServerOptions, 'key' | 'cert' | 'ca' | 'crl'> {
  return { key: trust.key, cert: trust.cert, ca: [...trust.ca], crl: [...trust.crl] };
}

/**
 * What every SMTP listener of ours shares (MX and submission): our trust material and the MSSanté
 * TLS profile — never smtp-server's built-in key nor its TLS 1.0 minimum —, a client certificate
 * asked for but judged by us (so that refusals get precise replies), and the SMTP extensions.
 */
export function baseServerOptions(args: {
  readonly config: Pick<Config, 'smtp' | 'tls'>;
  readonly trust: TrustMaterial;
  readonly banner: string;
  /** Distinct per listener, so that TLS sessions resume only where they began. */
  readonly sessionIdContext: string;
}): SMTPServerOptions {
  const { smtp, tls } = args.config;
  return {
    name: smtp.hostname,
    banner: args.banner,
    ...secureContextOf(args.trust),
    ...tlsProfile(tls),
    requestCert: true,
    rejectUnauthorized: false,
    sessionIdContext: args.sessionIdContext,
    // Both are off by default in smtp-server. RFC 2034 codes let peers and clients tell refusals
    // apart; DSN parameters (RFC 3461) must be accepted and kept (MSSANTE.md "Message conventions").
    hideENHANCEDSTATUSCODES: false,
    hideDSN: false,
    size: smtp.maxMessageBytes,
    rejectOversized: true,
    maxRecipients: smtp.maxRecipients,
    disableReverseLookup: true,
    // We log events ourselves (one child logger per connection).
    logger: false,
  };
}
