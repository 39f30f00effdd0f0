import { GatewayError } from '../errors/index.js';
import { checkAddress, normalisePersonId, normalizeDomain } from '../shared/index.js';

/**
 * The mailbox (BAL, "boîte aux lettres") model and its pure validation rules. No I/O here: the
 * registry and the admin API call these functions, and the unit tests drive them with tables.
 *
 * MSSanté addresses never change identity (MSSANTE.md "Mailboxes (BAL)"): address and type are fixed
 * at creation, and a deleted BAL stays as a tombstone so its address is never handed out again.
 */

export const BAL_TYPES = ['PER', 'ORG', 'APP', 'CAB'] as const;
export type BalType = (typeof BAL_TYPES)[number];

export const BAL_STATUSES = ['active', 'suspended', 'deleted'] as const;
export type BalStatus = (typeof BAL_STATUSES)[number];

export interface Bal {
  /** Lower-case `local@domain`, the registry key. */
  readonly address: string;
  readonly type: BalType;
  /** National person id (PER) or national structure id (ORG, APP, CAB). */
  readonly owner: string;
  readonly status: BalStatus;
  /** ISO-8601 UTC. */
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly suspendedAt?: string;
  readonly deletedAt?: string;
  /** Why the BAL was last suspended or deleted, as given by the operator. */
  readonly statusReason?: string;
  /**
   * Red list (MSSANTE.md "Mailboxes"): never published in the national directory. Always present in
   * what the registry returns; absent only in hand-built values, where it means false.
   */
  readonly listeRouge?: boolean;
  /** Published metadata (bal-metadata.ts), absent when not given. */
  readonly description?: string;
  readonly service?: string;
  readonly responsible?: string;
}

export interface NewBal {
  readonly address: string;
  readonly type: BalType;
  readonly owner: string;
}

function invalidAddress(input: string, why: string): GatewayError {
  return new GatewayError('BAL_INVALID_ADDRESS', `invalid mailbox address "${input}": ${why}`, {
    address: input,
  });
}

/**
 * Validates the syntax of a bare RFC 5321 address and returns its canonical form (shared/address.ts).
 * Throws BAL_INVALID_ADDRESS saying what to fix.
 */
export function parseBalAddress(input: string): string {
  const parsed = checkAddress(input);
  if (!parsed.ok) throw invalidAddress(input, parsed.problem);
  return parsed.value.address;
}

/** Throws BAL_DOMAIN_NOT_OURS unless the (valid, canonical) address is in one of our domains. */
export function assertOurDomain(address: string, domains: readonly string[]): void {
  const domain = address.slice(address.lastIndexOf('@') + 1);
  // Domains compare in canonical form (case-insensitive, RFC 5321 §2.4; IDNA); the address already is.
  if (domains.some((d) => (normalizeDomain(d) ?? d.toLowerCase()) === domain)) return;
  throw new GatewayError(
    'BAL_DOMAIN_NOT_OURS',
    `the domain "${domain}" of ${address} is not operated by this gateway; ` +
      `use one of: ${domains.join(', ')} (configuration key "domains")`,
    { address, domain },
  );
}

export function isBalType(value: string): value is BalType {
  return (BAL_TYPES as readonly string[]).includes(value);
}

export function isBalStatus(value: string): value is BalStatus {
  return (BAL_STATUSES as readonly string[]).includes(value);
}

/** Parses a mailbox type, accepting any letter case. Throws BAL_INVALID_TYPE. */
export function parseBalType(input: string): BalType {
  const type = input.trim().toUpperCase();
  if (isBalType(type)) return type;
  throw new GatewayError(
    'BAL_INVALID_TYPE',
    `unknown mailbox type "${input}": use PER (a person), ORG (a service of an organisation), ` +
      'APP (software) or CAB (a private practice)',
    { type: input },
  );
}

// National structure id: one type digit (1 FINESS, 2 SIREN, 3 SIRET, 4 RPPS practice id, ...) then
// the identifier in that register, 9 characters (FINESS, SIREN) to 14 (SIRET).
const STRUCTURE_ID = /^[0-9][0-9A-Za-z]{8,14}$/;

// The national person id rule is shared/person-id.ts's; the registry's surface keeps offering it.
export { normalisePersonId };

/** Validates the owner identifier for the mailbox type and returns it trimmed. Throws BAL_INVALID_OWNER. */
export function parseBalOwner(type: BalType, input: string): string {
  const owner = type === 'PER' ? input.trim().toUpperCase() : input.trim();
  switch (type) {
    case 'PER':
      if (normalisePersonId(owner) !== null) return owner;
      throw new GatewayError(
        'BAL_INVALID_OWNER',
        `owner "${input}" of a PER mailbox must be the person's national id: 8 followed by the 11-digit ` +
          'RPPS number (e.g. 810001234567), or 0 followed by the 9-character ADELI number (e.g. 0751234567)',
        { type, owner: input },
      );
    case 'ORG':
    case 'APP':
    case 'CAB':
      if (STRUCTURE_ID.test(owner)) return owner;
      throw new GatewayError(
        'BAL_INVALID_OWNER',
        `owner "${input}" of a ${type} mailbox must be the structure's national id: a type digit followed by ` +
          'its identifier, 9 to 15 characters in all (e.g. 1 + 9-digit FINESS = 1750712184, ' +
          '3 + 14-digit SIRET = 312345678900017)',
        { type, owner: input },
      );
  }
}

/** Validates a creation request as a whole, in the order an operator would fix it. */
export function parseNewBal(
  input: { address: string; type: string; owner: string },
  domains: readonly string[],
): NewBal {
  const address = parseBalAddress(input.address);
  assertOurDomain(address, domains);
  const type = parseBalType(input.type);
  const owner = parseBalOwner(type, input.owner);
  return { address, type, owner };
}

// The lifecycle of a BAL. `deleted` is final: the address is never reused.
const TRANSITIONS: Readonly<Record<BalStatus, readonly BalStatus[]>> = {
  active: ['suspended', 'deleted'],
  suspended: ['active', 'deleted'],
  deleted: [],
};

export function canTransition(from: BalStatus, to: BalStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

/** The statuses a BAL may be in for a change to `to` (the registry's atomic check uses it). */
export function statusesAllowingTransitionTo(to: BalStatus): BalStatus[] {
  return BAL_STATUSES.filter((from) => canTransition(from, to));
}

/** Throws BAL_INVALID_TRANSITION with what the operator can do instead. */
export function assertTransition(address: string, from: BalStatus, to: BalStatus): void {
  if (canTransition(from, to)) return;
  throw new GatewayError('BAL_INVALID_TRANSITION', transitionRefusal(address, from, to), {
    address,
    from,
    to,
  });
}

function transitionRefusal(address: string, from: BalStatus, to: BalStatus): string {
  if (from === 'deleted') return `${address} is deleted; a deleted mailbox cannot change any more`;
  if (from === to) return `${address} is already ${from}`;
  return `${address} is ${from} and cannot become ${to}`;
}

/** The BAL_EXISTS refusal for a create, telling apart a live BAL from a tombstone. */
export function balExistsError(address: string, status: BalStatus): GatewayError {
  const message =
    status === 'deleted'
      ? `${address} was deleted and cannot be created again: MSSanté addresses are never reused; choose another address`
      : `${address} already exists (status ${status})`;
  return new GatewayError('BAL_EXISTS', message, { address, status });
}
