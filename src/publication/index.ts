export {
  CALL_OUTCOMES,
  DIRECTORY_OPERATIONS,
  PUBLICATION_STATES,
  UNPUBLISH_HOLDS,
  UNPUBLISHED_REASONS,
  isUnpublishHold,
} from './publication-state.js';
export type {
  CallOutcome,
  DirectoryCallRecord,
  DirectoryOperation,
  Listed,
  PublicationError,
  PublicationState,
  PublicationStateName,
  UnpublishHold,
  UnpublishedReason,
} from './publication-state.js';
export { entryOf, sameEntry } from './mailbox-entry.js';
export type { DirectoryTarget, MailboxEntry } from './mailbox-entry.js';
export { desiredFor, listedAfterFailure, nextStep, reachedState } from './publication-decision.js';
export type { Desired, Step } from './publication-decision.js';
export { DirectoryCallError, isDirectoryCallError } from './publisher.js';
export type { DirectoryAnswer, Publisher, PublicationErrorCode } from './publisher.js';
export { contactPoint, fhirPathString, fhirRequest, mailboxPath } from './fhir-patch.js';
export type { FhirParameters, FhirPart, FhirRequest, FhirSettings } from './fhir-patch.js';
export { FhirPublisher } from './fhir-publisher.js';
export type { FhirClientTls, FhirPublisherOptions } from './fhir-publisher.js';
export { DRIFT_LISTED_MAX, EXTRACTION_BAL_TYPES } from './drift.js';
export type { DriftKind, DriftOptions, DriftReport, ExtractionView } from './drift.js';
export { PUBLICATION_QUEUE, PublicationService, backoffMs } from './publication-service.js';
export type { PublicationServiceOptions, PublicationSettings } from './publication-service.js';
export type { BalSource, PublicationObserver } from './publication-work.js';
export { checkDriftOnce } from './drift-check.js';
export type { DriftCheckDeps } from './drift-check.js';
export { startDevDirectory } from './dev-directory.js';
export type { DevDirectory, DevDirectoryOptions } from './dev-directory.js';
