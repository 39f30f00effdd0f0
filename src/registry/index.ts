export {
  BAL_STATUSES,
  BAL_TYPES,
  assertOurDomain,
  assertTransition,
  canTransition,
  isBalStatus,
  isBalType,
  normaliseAddress,
  parseBalAddress,
  parseBalOwner,
  parseBalType,
  parseNewBal,
} from './bal.js';
export type { Bal, BalStatus, BalType, NewBal } from './bal.js';
export { BalRegistry, DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT } from './bal-registry.js';
export type {
  Actor,
  BalCounts,
  BalListQuery,
  BalPage,
  BalRegistryOptions,
  MailboxProvisioner,
} from './bal-registry.js';
