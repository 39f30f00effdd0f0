export {
  BAL_STATUSES,
  BAL_TYPES,
  assertOurDomain,
  assertTransition,
  canTransition,
  isBalStatus,
  isBalType,
  normalisePersonId,
  parseBalAddress,
  parseBalOwner,
  parseBalType,
  parseNewBal,
} from './bal.js';
export type { Bal, BalStatus, BalType, NewBal } from './bal.js';
export type { Access, Principal, Right, Scope } from './access.js';
export type { Actor } from './actor.js';
export { METADATA_MAX_LENGTH, METADATA_TEXT_FIELDS, parseMetadataPatch } from './bal-metadata.js';
export type { BalMetadata, BalMetadataPatch, MetadataTextField } from './bal-metadata.js';
export { MAX_SUMMARY_LIMIT } from './bal-summary.js';
export type { BalSummary, BalSummaryPage } from './bal-summary.js';
export type { BalChange, BalChangeKind, BalObserver } from './bal-observer.js';
// Atomic check-then-write steps for other folders' Redis state (publication/).
export { LuaScript } from './lua-script.js';
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
  assertPersonMayManage,
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
export { ACTIVITY_CHANNELS, ActivityStore } from './activity-store.js';
export type { ActivityChannel, BalActivity } from './activity-store.js';
export { ownedAddresses, ownedMailboxes } from './owned-mailboxes.js';
