export {
  BAL_STATUSES,
  BAL_TYPES,
  assertOurDomain,
  assertTransition,
  canTransition,
  isBalStatus,
  isBalType,
  normaliseAddress,
  normalisePersonId,
  parseBalAddress,
  parseBalOwner,
  parseBalType,
  parseNewBal,
} from './bal.js';
export type { Bal, BalStatus, BalType, NewBal } from './bal.js';
export type { Actor } from './actor.js';
export { BalRegistry, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './bal-registry.js';
export type {
  BalCounts,
  BalListQuery,
  BalPage,
  BalRegistryOptions,
  MailboxProvisioner,
} from './bal-registry.js';
export {
  GRANT_RIGHTS,
  SCOPES,
  isGrantExpired,
  parseCertificateDn,
  parseGrantRequest,
  parseGrantSubject,
  resolveAccess,
  rightAppliesTo,
  subjectKey,
} from './rights.js';
export type { Grant, GrantRequest, GrantRight, GrantSubject, NewGrant, SubjectRequest } from './rights.js';
export type { AccessibleBal, GrantView } from './rights-store.js';
export { ACTIVITY_CHANNELS } from './activity-store.js';
export type { ActivityChannel, BalActivity } from './activity-store.js';
