export { parseWhitelistXml } from './whitelist-parser.js';
export type { ParsedWhitelist, RejectedWhitelistEntry, WhitelistEntry } from './whitelist-parser.js';
export { Whitelist, WhitelistHolder } from './whitelist.js';
export { loadWhitelistFile } from './load-whitelist.js';
export { DirectoryMirrors } from './directory-mirrors.js';
export type { DirectoryMirrorsOptions } from './directory-mirrors.js';
export { NationalDirectory, EXTRACTION_MIRROR } from './national-directory.js';
export type { DirectoryLookup } from './national-directory.js';
export { ENTRY_FIELDS } from './extraction-format.js';
export type { DirectoryEntry, EntryField } from './extraction-format.js';
export { loadExtraction } from './extraction-loader.js';
export type { ExtractionLoadOptions, ExtractionLoadResult } from './extraction-loader.js';
export {
  authoritiesWithoutRevocation,
  canonicalSubject,
  crlDer,
  crlIssuer,
  crlPem,
  parseCrl,
} from './crl-check.js';
export type { CrlFacts } from './crl-check.js';
export { crlFile } from './mirror-kinds.js';
export { configuredMirrors, readMirrorStatuses } from './mirror-status.js';
export type { MirrorDefinition, MirrorStatus } from './mirror-status.js';
export type { MirrorState } from './mirror-store.js';
export { MIRROR_QUEUE, bullPrefix, requestRefresh } from './mirror-queue.js';
export type {
  FailureReason,
  RefreshOutcome,
  RefreshReason,
  RefreshResult,
  RefusalReason,
} from './mirror-outcome.js';
export { DER, DerError, children, readDer } from './der.js';
export type { DerNode } from './der.js';
