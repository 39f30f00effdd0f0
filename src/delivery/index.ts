export { INLINE_BYTES, Spool } from './spool.js';
export { parseSpoolEntry } from './spool-file.js';
export { LOCAL_DESTINATION } from './spool-entry.js';
export type {
  DestinationRecipient,
  DestinationState,
  RecipientState,
  SpoolEnvelope,
  SpoolRecipient,
} from './spool-entry.js';
export {
  applyAttempt,
  delayNoticeDue,
  destinationOf,
  destinationsOf,
  expireIfDue,
  initialState,
  jobIdOf,
  parseJobId,
  retryDelayMs,
  statusOf,
} from './delivery-plan.js';
export type { RetryPolicy, TransportResult } from './delivery-plan.js';
export { localDestination } from './destination-transport.js';
export type {
  AttemptRequest,
  DestinationAttempt,
  DestinationTransport,
  LocalTransport,
} from './destination-transport.js';
export { relayDestination } from './relay-destination.js';
export { DestinationWorker } from './destination-worker.js';
export type { DeliveryObserver, DestinationWorkerDeps, WorkOutcome } from './destination-worker.js';
export { DsnNotifier } from './dsn-notifier.js';
export type { DsnNotifierDeps, GeneratedMessage, GeneratedRoute } from './dsn-notifier.js';
export { DeliveryQueue, QUEUE_NAMES } from './delivery-queue.js';
export type {
  DeliveryJobData,
  DeliveryQueueDeps,
  DeliveryQueueOptions,
  QueueEntry,
  QueueName,
} from './delivery-queue.js';
export { buildDsn, dsnWanted } from './dsn.js';
export type { BuiltDsn, DsnAction, DsnInput, DsnPolicy, DsnRecipientReport } from './dsn.js';
export { indicatorHeadersOf, mailDate, scanHeaders } from './message-format.js';
export type { IndicatorHeaders, ScannedHeaders } from './message-format.js';
export { queueAdministration } from './queue-administration.js';
export type { QueueAdministration, QueueAdministrationDeps } from './queue-administration.js';
