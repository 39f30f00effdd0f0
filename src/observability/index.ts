export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { FileAuditJournal, MemoryAuditJournal } from './journal.js';
export type {
  AuditEvent,
  AuditJournal,
  FileAuditJournalOptions,
  JournalEntry,
  JournalListener,
} from './journal.js';
export { searchJournal, verifyJournal } from './journal-reader.js';
export type { BrokenEntry, JournalQuery, VerifyReport } from './journal-reader.js';
export { createMetrics } from './metrics.js';
export type { MetricSources, Metrics } from './metrics.js';
export { createObservabilityServer, listenHttp } from './http-server.js';
export type { ReadinessCheck } from './http-server.js';
export { gaugeSources } from './gauge-sources.js';
export type { GaugeSourcePorts } from './gauge-sources.js';
export { readinessChecks } from './readiness-checks.js';
export type { ListenerReadiness, ReadinessPorts } from './readiness-checks.js';
export { reportErrors, type ErrorEmitter } from './error-reporter.js';
