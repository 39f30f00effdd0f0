import type { Access, Principal, Scope } from './access.js';
import { GatewayError } from '../errors/index.js';
import { normalizeDn } from '../pki/index.js';
import { normalisePersonId, type Bal, type BalType } from './bal.js';

/**
 * Rights on a mailbox (ARCHITECTURE.md §4) and the pure rules over them: which grant a mailbox type
 * accepts, and which right a principal holds. No I/O: the rights store persists grants, the auth
 * module calls resolveAccess, and the unit tests drive both with tables.
 *
 * `owner` is never stored as a grant: it follows from the mailbox (a PER mailbox's `owner` is the
 * person's national id; ORG, APP and CAB mailboxes belong to a structure, which never logs in) or
 * from an operator-managed secret of that mailbox.
 */

export const GRANT_RIGHTS = ['delegate', 'member', 'manager', 'application'] as const;
export type GrantRight = (typeof GRANT_RIGHTS)[number];

/** Canonical order of scopes, as stored and shown. */
export const SCOPES = ['read', 'send'] as const satisfies readonly Scope[];

export type GrantSubject =
  | { readonly kind: 'person'; readonly nationalId: string }
  /** Canonical subject DN (pki `normalizeDn`). */
  | { readonly kind: 'certificate'; readonly dn: string };

export interface Grant {
  readonly right: GrantRight;
  readonly subject: GrantSubject;
  /** Non-empty, in canonical order. */
  readonly scopes: Scope[];
  /** ISO instant at which the grant stops working (it works strictly before). */
  readonly expiresAt?: string;
  /** Who granted it: `<actor kind>:<actor id>`, e.g. `cli:alice`. */
  readonly grantedBy: string;
  readonly grantedAt: string;
}

/** A grant as an operator asks for it (admin API body, CLI options), before validation. */
export interface GrantRequest {
  readonly right: string;
  /** National id of the person (delegate, member). */
  readonly person?: string;
  /** Subject DN of the certificate, in any spelling (application). */
  readonly certificateDn?: string;
  /** Default: both for member and application; required for delegate. */
  readonly scopes?: readonly string[];
  readonly expiresAt?: string;
}

/** Who a grant is for, as an operator names it (revoke). */
export interface SubjectRequest {
  readonly person?: string;
  readonly certificateDn?: string;
}

/** A validated request: a grant without its provenance. */
export type NewGrant = Omit<Grant, 'grantedBy' | 'grantedAt'>;

/**
 * The rights each mailbox type accepts. A delegate is a person reading or sending for the owner
 * (a PER's person, or the structure of an ORG/CAB); a member co-manages a structure's mailbox; an
 * APP mailbox is opened by software only, through its certificate. A manager is a member who may also
 * add and remove the members and managers of that mailbox (issue #13; the first one is set by the
 * operator).
 */
const RIGHTS_BY_TYPE: Readonly<Record<BalType, readonly GrantRight[]>> = {
  PER: ['delegate'],
  ORG: ['delegate', 'member', 'manager'],
  CAB: ['delegate', 'member', 'manager'],
  APP: ['application'],
};

export function rightAppliesTo(type: BalType, right: GrantRight): boolean {
  return RIGHTS_BY_TYPE[type].includes(right);
}

function isGrantRight(value: string): value is GrantRight {
  return (GRANT_RIGHTS as readonly string[]).includes(value);
}

function invalid(message: string, details: Record<string, unknown> = {}): GatewayError {
  return new GatewayError('RIGHT_INVALID', message, details);
}

/** Validates a grant request for this mailbox, in the order an operator would fix it. */
export function parseGrantRequest(bal: Bal, request: GrantRequest, now: Date): NewGrant {
  if (bal.status === 'deleted') {
    throw new GatewayError(
      'BAL_INVALID_TRANSITION',
      `${bal.address} is deleted; it cannot be granted rights`,
      {
        address: bal.address,
      },
    );
  }
  const right = parseRight(bal, request.right);
  const subject = parseGrantSubject(request);
  checkSubjectFitsRight(bal, right, subject);
  const scopes = parseScopes(right, request.scopes);
  const expiresAt = request.expiresAt === undefined ? undefined : parseExpiry(request.expiresAt, now);
  return { right, subject, scopes, ...(expiresAt === undefined ? {} : { expiresAt }) };
}

function parseRight(bal: Bal, input: string): GrantRight {
  const right = input.trim().toLowerCase();
  if (!isGrantRight(right)) {
    throw invalid(`unknown right "${input}": use delegate, member, manager or application`, { right: input });
  }
  if (rightAppliesTo(bal.type, right)) return right;
  const why: Record<GrantRight, string> = {
    delegate: 'an APP mailbox is opened by software only: bind its certificate with right application',
    manager:
      bal.type === 'PER'
        ? 'a PER mailbox belongs to one person: give other people right delegate'
        : 'an APP mailbox is opened by software only: bind its certificate with right application',
    member:
      bal.type === 'PER'
        ? 'a PER mailbox belongs to one person: give other people right delegate'
        : 'an APP mailbox is opened by software only: bind its certificate with right application',
    application: 'only APP mailboxes are opened by an application certificate',
  };
  throw new GatewayError(
    'RIGHT_NOT_APPLICABLE',
    `right ${right} does not apply to ${bal.address} (type ${bal.type}): ${why[right]}`,
    { address: bal.address, type: bal.type, right },
  );
}

/** Validates the subject of a grant or revocation: exactly one of a person id or a certificate DN. */
export function parseGrantSubject(request: SubjectRequest): GrantSubject {
  const { person, certificateDn } = request;
  if ((person === undefined) === (certificateDn === undefined)) {
    throw invalid('name exactly one subject: a person (national id) or a certificate DN');
  }
  if (person !== undefined) {
    const nationalId = normalisePersonId(person);
    if (nationalId !== null) return { kind: 'person', nationalId };
    throw invalid(
      `person "${person}" is not a national id: 8 followed by the 11-digit RPPS number (e.g. 810001234567), ` +
        'or 0 followed by the 9-character ADELI number (e.g. 0751234567)',
      { person },
    );
  }
  return { kind: 'certificate', dn: parseCertificateDn(certificateDn ?? '') };
}

/** Canonical form of a certificate subject DN. Throws RIGHT_INVALID. */
export function parseCertificateDn(input: string): string {
  try {
    return normalizeDn(input);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw invalid(
      `certificate DN "${input}" is not a DN (${why}); give e.g. "CN=app.example,O=Hospital,C=FR"`,
      {
        certificateDn: input,
      },
    );
  }
}

function checkSubjectFitsRight(bal: Bal, right: GrantRight, subject: GrantSubject): void {
  const wanted = right === 'application' ? 'certificate' : 'person';
  if (subject.kind !== wanted) {
    throw invalid(
      right === 'application'
        ? 'right application is given to a certificate: name its subject DN, not a person'
        : `right ${right} is given to a person: name the national id, not a certificate`,
      { right },
    );
  }
  if (subject.kind === 'person' && bal.type === 'PER' && subject.nationalId === bal.owner) {
    throw new GatewayError(
      'RIGHT_NOT_APPLICABLE',
      `${subject.nationalId} owns ${bal.address}; an owner needs no delegation`,
      { address: bal.address, right },
    );
  }
}

function parseScopes(right: GrantRight, input: readonly string[] | undefined): Scope[] {
  const asked = new Set((input ?? []).map((s) => s.trim().toLowerCase()));
  const unknown = [...asked].filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (unknown.length > 0) {
    throw invalid(`unknown scope "${unknown.join('", "')}": scopes are read and send`, { scopes: input });
  }
  if (right === 'delegate') {
    if (asked.size === 0) {
      throw invalid('a delegate needs at least one scope: read, send, or both', { scopes: input });
    }
    return SCOPES.filter((s) => asked.has(s));
  }
  // A member or manager co-manages and an application runs the mailbox: always both, never a subset.
  if (input !== undefined && asked.size !== SCOPES.length) {
    throw invalid(`right ${right} always has scopes read and send; give a person right delegate for fewer`, {
      scopes: input,
    });
  }
  return [...SCOPES];
}

// ISO 8601 date and time with an explicit offset: a bare local time would depend on the server.
const ISO_INSTANT = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?(?:Z|[+-]\d{2}:\d{2})$/i;

function parseExpiry(input: string, now: Date): string {
  const ms = ISO_INSTANT.test(input.trim()) ? Date.parse(input.trim()) : Number.NaN;
  if (Number.isNaN(ms)) {
    throw invalid(
      `expiry "${input}" is not an ISO 8601 instant with a time zone, e.g. 2026-03-31T18:00:00Z or 2026-03-31T20:00:00+02:00`,
      { expiresAt: input },
    );
  }
  if (ms <= now.getTime()) {
    throw invalid(`expiry ${input} is not in the future (now is ${now.toISOString()})`, { expiresAt: input });
  }
  return new Date(ms).toISOString();
}

/** The hash field a grant is stored under: one grant per subject and mailbox. */
export function subjectKey(subject: GrantSubject): string {
  return subject.kind === 'person' ? `person:${subject.nationalId}` : `certificate:${subject.dn}`;
}

/** True from the expiry instant on: a grant works strictly before `expiresAt`. */
export function isGrantExpired(grant: Pick<Grant, 'expiresAt'>, now: Date): boolean {
  return grant.expiresAt !== undefined && now.getTime() >= Date.parse(grant.expiresAt);
}

/**
 * The right `principal` holds on `bal` at `now`, or null. The mailbox status is the caller's
 * concern: this answers rights only. An owner always wins over a grant to the same person.
 */
export function resolveAccess(
  bal: Bal,
  grants: readonly Grant[],
  principal: Principal,
  now: Date,
): Access | null {
  switch (principal.kind) {
    case 'secret':
      return principal.bal.trim().toLowerCase() === bal.address ? ownerAccess(bal, principal) : null;
    case 'person': {
      const nationalId = normalisePersonId(principal.nationalId);
      if (nationalId === null) return null;
      if (bal.type === 'PER' && bal.owner === nationalId) return ownerAccess(bal, principal);
      return grantAccess(bal, grants, principal, now, ({ right, subject }) => {
        return right !== 'application' && subject.kind === 'person' && subject.nationalId === nationalId;
      });
    }
    case 'application': {
      const dn = canonicalOrNull(principal.dn);
      if (dn === null) return null;
      return grantAccess(bal, grants, principal, now, ({ right, subject }) => {
        return right === 'application' && subject.kind === 'certificate' && subject.dn === dn;
      });
    }
  }
}

function ownerAccess(bal: Bal, principal: Principal): Access {
  return { bal: bal.address, right: 'owner', scopes: new Set(SCOPES), principal };
}

function grantAccess(
  bal: Bal,
  grants: readonly Grant[],
  principal: Principal,
  now: Date,
  matches: (grant: Grant) => boolean,
): Access | null {
  // One grant per subject is stored; should several match, the widest scopes win.
  const best = grants
    .filter((g) => matches(g) && rightAppliesTo(bal.type, g.right) && !isGrantExpired(g, now))
    .sort((a, b) => b.scopes.length - a.scopes.length)[0];
  if (best === undefined) return null;
  return {
    bal: bal.address,
    right: best.right,
    scopes: new Set(best.scopes),
    principal,
    ...(best.expiresAt === undefined ? {} : { expiresAt: best.expiresAt }),
  };
}

function canonicalOrNull(dn: string): string | null {
  try {
    return normalizeDn(dn);
  } catch {
    return null;
  }
}

/**
 * May this person (not the operator) give or take `right` on `bal`? The one rule for the portal
 * (ARCHITECTURE.md §4, "rights are granted by the people they belong to"): the owner of a PER
 * mailbox manages its delegates; a live manager of an ORG or CAB mailbox manages its delegates,
 * members and managers. The operator's CLI and admin API are not bound by it (support).
 * Throws RIGHT_FORBIDDEN, naming who may.
 */
export function assertPersonMayManage(
  bal: Bal,
  grants: readonly Grant[],
  nationalId: string,
  right: GrantRight,
  now: Date,
): void {
  const id = normalisePersonId(nationalId);
  const owner = bal.type === 'PER' && id !== null && bal.owner === id;
  const manager =
    id !== null &&
    (bal.type === 'ORG' || bal.type === 'CAB') &&
    grants.some(
      (g) =>
        g.right === 'manager' &&
        g.subject.kind === 'person' &&
        g.subject.nationalId === id &&
        !isGrantExpired(g, now),
    );
  if ((owner && right === 'delegate') || (manager && right !== 'application')) return;
  const who =
    bal.type === 'PER'
      ? 'only its owner manages the delegates of a PER mailbox'
      : bal.type === 'APP'
        ? 'an APP mailbox is managed by the operator only'
        : 'only a manager of this mailbox manages its delegates, members and managers';
  throw new GatewayError(
    'RIGHT_FORBIDDEN',
    `${nationalId} may not change right ${right} on ${bal.address}: ${who}`,
    {
      address: bal.address,
      right,
    },
  );
}
