import type { ErrorCode } from '../errors/index.js';
import type { AuditEvent } from '../observability/index.js';
import type { Bal } from '../registry/index.js';
import type { LimitScope } from './failure-limiter.js';
import type { Access, AuthRequest, Principal } from './types.js';

/**
 * The traces of an authentication (MSSANTE.md "Traceability": every authentication, with the token
 * subject or the certificate DN; never a token or a secret). One shape for the journal and the log.
 */

/** What the journal says of a principal: the person's national id or the certificate DN, never a credential. */
export function principalIdentity(principal: Principal): Record<string, string> {
  switch (principal.kind) {
    case 'person':
      return {
        kind: 'person',
        nationalId: principal.nationalId,
        via: principal.via,
        ...(principal.dn === undefined ? {} : { dn: principal.dn }),
      };
    case 'application':
      return { kind: 'application', dn: principal.dn, fingerprint: principal.fingerprint };
    case 'secret':
      return { kind: 'secret', bal: principal.bal };
  }
}

/** The fields every authentication event carries. */
export function attemptFields(request: AuthRequest, bal: string | undefined): Record<string, unknown> {
  return {
    channel: request.channel,
    mechanism: request.mechanism,
    bal,
    remote: request.remote,
  };
}

/**
 * `auth.succeeded`. A right other than `owner` names both identities (ARCHITECTURE.md §4): the
 * principal that acts, and the mailbox with its owner on whose behalf it acts.
 */
export function succeededEvent(request: AuthRequest, access: Access, bal: Bal): AuditEvent {
  return {
    event: 'auth.succeeded',
    ...attemptFields(request, access.bal),
    principal: principalIdentity(access.principal),
    right: access.right,
    scopes: [...access.scopes],
    ...(access.right === 'owner' ? {} : { mailboxType: bal.type, mailboxOwner: bal.owner }),
    ...(access.expiresAt === undefined ? {} : { rightExpiresAt: access.expiresAt }),
  };
}

export function failedEvent(
  request: AuthRequest,
  bal: string | undefined,
  principal: Principal | undefined,
  failure: { code: ErrorCode; reason: string; details?: Readonly<Record<string, unknown>> },
): AuditEvent {
  const { details = {} } = failure;
  return {
    event: 'auth.failed',
    ...attemptFields(request, bal),
    ...(principal === undefined ? {} : { principal: principalIdentity(principal) }),
    ...(typeof details.dn === 'string' && principal === undefined ? { dn: details.dn } : {}),
    ...(typeof details.issuer === 'string' ? { issuer: details.issuer } : {}),
    ...(typeof details.scope === 'string' ? { limitScope: details.scope } : {}),
    code: failure.code,
    reason: failure.reason,
  };
}

/**
 * What the composition root counts (metrics are wired there): one attempt per authenticate call,
 * labelled with bounded values only, and every lockout a failure caused.
 */
export interface AuthObserver {
  /** `outcome` is `ok` or the refusal's reason (a bounded label). */
  attempt(labels: { channel: string; mechanism: string; outcome: string }): void;
  lockout(scope: LimitScope): void;
}
