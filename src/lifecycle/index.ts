export {
  decideInactivity,
  type InactivityAction,
  type InactivityDecision,
  type InactivityEvidence,
  type InactivityThresholds,
  type NoDecisionReason,
  type PolicySubject,
} from './inactivity-policy.js';
export { mailPurgeDue, type MailPurgeDecision } from './mail-retention.js';
export type {
  ActivityReader,
  CallOutcome,
  DirectoryAnswer,
  LifecycleObserver,
  LifecyclePublisher,
  LifecycleRegistry,
  MailPurger,
  PublicationStateReader,
  PublicationView,
  WarningAudienceOf,
  WarningDelivery,
} from './lifecycle-ports.js';
export {
  warningRecipients,
  type WarningAudience,
  type WarningChannel,
  type WarningRecipient,
} from './warning-recipients.js';
export { AssumedPublication } from './assumed-publication.js';
export { lifecycleMetricsObserver } from './lifecycle-metrics.js';
export {
  DEFAULT_PAGE_SIZE,
  LifecyclePlanner,
  planItems,
  policySubject,
  type LifecyclePlannerOptions,
  type PlanItem,
  type PlannedBal,
} from './lifecycle-planner.js';
export { LifecycleRunner, type LifecycleRunnerOptions, type RunSummary } from './lifecycle-runner.js';
export {
  LIFECYCLE_QUEUE,
  LIFECYCLE_SCHEDULER_ID,
  LifecycleScheduler,
  type LifecycleSchedulerOptions,
} from './lifecycle-scheduler.js';
export {
  LifecycleActivity,
  type LifecycleActivityOptions,
  type ReturnOutcome,
} from './lifecycle-activity.js';
export {
  buildWarningMessage,
  warningSubject,
  warningText,
  type WarningMessage,
  type WarningMessageInput,
} from './warning-message.js';
export {
  IndicatorRecorder,
  MESSAGE_DIRECTIONS,
  OTHER_SOFTWARE,
  OTHER_CDA,
  MAX_CDA_CODES_PER_DAY,
  COUNTED_BAL_CHANGES,
  cdaCodes,
  softwareLabel,
  type CountedBalChange,
  type IndicatorRecorderOptions,
  type MessageDirection,
  type MessageIndicator,
  type MessageKind,
} from './indicator-recorder.js';
export {
  INDICATOR_CSV_COLUMNS,
  MAX_CDA_CODES_PER_MONTH,
  IndicatorReport,
  indicatorCsvHeader,
  indicatorCsvLine,
  type IndicatorReportOptions,
  type IndicatorRow,
} from './indicator-report.js';
export { balChangeIndicators, type BalChangeIndicatorsDeps } from './indicator-bal-changes.js';
export { LifecycleKeys } from './lifecycle-keys.js';
export {
  DAY_MS,
  dailyCron,
  dayInZone,
  daysOfMonth,
  frenchDate,
  isMonth,
  monthInZone,
  nextDailyRun,
  parseIsoInstant,
  zonedInstant,
} from './lifecycle-time.js';
export { IndicatorBuffer, type IndicatorBufferOptions } from './indicator-buffer.js';
export { LifecycleEvents } from './lifecycle-events.js';
export type { LifecycleEventsDeps } from './lifecycle-events.js';
export { lifecyclePublicationPorts } from './publication-ports.js';
