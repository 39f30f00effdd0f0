export { createLogger } from './logger.js';
export type { Logger } from './logger.js';
export { FileAuditJournal, MemoryAuditJournal } from './journal.js';
export type { AuditEvent, AuditJournal } from './journal.js';
export { createMetrics } from './metrics.js';
export type { MetricSources, Metrics } from './metrics.js';
export { createObservabilityServer, listenHttp } from './http-server.js';
export type { ReadinessCheck } from './http-server.js';
export { reportErrors, type ErrorEmitter } from './error-reporter.js';
