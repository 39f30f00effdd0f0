import type { SMTPServerAuthentication } from 'smtp-server';
import addressparser from 'nodemailer/lib/addressparser/index.js';
import type { AuthRequest, Principal, TlsFacts } from '../auth/index.js';
import type { ErrorCode } from '../errors/index.js';

/** Decoders of the SASL initial responses smtp-server does not parse itself (from auth/). */
export interface SaslDecoders {
  oauthBearer(initialResponse: string): { bal?: string | undefined; token: string };
  external(initialResponse: string): { authzid?: string | undefined };
}

/** What smtp-server hands onAuth, with the raw initial response our SASL extensions add. */
type SmtpAuth = Omit<SMTPServerAuthentication, 'method'> & {
  method: SMTPServerAuthentication['method'] | 'OAUTHBEARER' | 'EXTERNAL';
  initialResponse?: string;
  authzid?: string;
  authcid?: string;
};

/**
 * The login name is the mailbox (ARCHITECTURE.md §4): XOAUTH2/OAUTHBEARER's user, PLAIN's authzid
 * (or authcid when a client leaves the authzid empty), LOGIN's name, EXTERNAL's authzid.
 */
export function toAuthRequest(
  smtpAuth: SMTPServerAuthentication,
  tls: TlsFacts,
  remote: string,
  sasl: SaslDecoders,
): AuthRequest | { error: ErrorCode } {
  const auth = smtpAuth as SmtpAuth;
  const base = { channel: 'submission' as const, tls, remote };
  try {
    switch (auth.method) {
      case 'XOAUTH2':
        return {
          ...base,
          mechanism: 'XOAUTH2',
          bal: auth.username,
          ...(auth.accessToken ? { token: auth.accessToken } : {}),
        };
      case 'PLAIN':
      case 'LOGIN':
        return {
          ...base,
          mechanism: auth.method,
          bal: auth.authzid || auth.username,
          authcid: auth.authcid || auth.username || '',
          password: auth.password ?? '',
        };
      case 'OAUTHBEARER': {
        const d = sasl.oauthBearer(auth.initialResponse ?? '');
        return { ...base, mechanism: 'OAUTHBEARER', bal: d.bal, token: d.token };
      }
      case 'EXTERNAL':
        return { ...base, mechanism: 'EXTERNAL', bal: sasl.external(auth.initialResponse ?? '').authzid };
      case 'CRAM-MD5':
      case 'XCLIENT':
        return { error: 'AUTH_MECHANISM_NOT_ALLOWED' };
    }
  } catch {
    return { error: 'AUTH_MALFORMED' };
  }
}

/** Both identities go in the journal when the sender is not the owner (ARCHITECTURE.md §4). */
export function describePrincipal(p: Principal): Record<string, string> {
  switch (p.kind) {
    case 'person':
      return { kind: p.kind, nationalId: p.nationalId, via: p.via };
    case 'application':
      return { kind: p.kind, dn: p.dn };
    case 'secret':
      return { kind: p.kind, bal: p.bal };
  }
}

/** The addresses of an address-list header (RFC 5322 §3.4), groups flattened. */
export function addressList(value: string): string[] {
  type Entry = { address?: string; group?: Entry[] };
  const flat = (list: Entry[]): string[] =>
    list.flatMap((e) => (e.group ? flat(e.group) : e.address ? [e.address] : []));
  return flat(addressparser(value) as unknown as Entry[]);
}
