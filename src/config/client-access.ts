import type { Config } from './schema.js';

/** Where mail clients reach one service: a host name and its two ports. */
export interface PublicService {
  readonly enabled: boolean;
  readonly host: string;
  /** STARTTLS port (RFC 6186 `_imap._tcp`, `_submission._tcp`). */
  readonly starttlsPort: number;
  /** Implicit-TLS port (RFC 8314 `_imaps._tcp`, `_submissions._tcp`). */
  readonly tlsPort: number;
}

export interface PublicClientAccess {
  readonly imap: PublicService;
  readonly submission: PublicService;
}

/**
 * The names and ports mail clients are told about (DNS SRV records, autoconfiguration): each
 * listener's public settings, else its listening port and smtp.hostname. `bound` gives the ports
 * actually bound, for listeners configured on port 0 (tests).
 */
export function publicClientAccess(
  config: Pick<Config, 'imap' | 'smtp'>,
  bound: Partial<Record<'imap' | 'imapTls' | 'submission' | 'submissionTls', number>> = {},
): PublicClientAccess {
  const { imap, smtp } = config;
  const { submission } = smtp;
  return {
    imap: {
      enabled: imap.enabled,
      host: imap.publicHost ?? smtp.hostname,
      starttlsPort: imap.publicPort ?? bound.imap ?? imap.port,
      tlsPort: imap.publicTlsPort ?? bound.imapTls ?? imap.tlsPort,
    },
    submission: {
      enabled: submission.enabled,
      host: submission.publicHost ?? smtp.hostname,
      starttlsPort: submission.publicPort ?? bound.submission ?? submission.port,
      tlsPort: submission.publicTlsPort ?? bound.submissionTls ?? submission.tlsPort,
    },
  };
}
