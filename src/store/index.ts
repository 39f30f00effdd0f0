export type { ImapEndpoint, LmtpEndpoint, MasterCredentials } from './store-endpoints.js';
export {
  deliverLmtp,
  LmtpPool,
  type LmtpDeliveryOptions,
  type LmtpMessage,
  type LmtpPoolOptions,
  type LmtpEnvelope,
  type LmtpRecipientResult,
} from './lmtp-client.js';
export {
  openMailboxSession,
  provisionMailbox,
  purgeMailbox,
  type MailboxSessionOptions,
} from './imap-master.js';
export { checkStoreHealth, type ProbeOptions, type StoreHealth } from './store-probe.js';
export {
  startEmbeddedDovecot,
  findEmbeddedDovecotProcesses,
  type EmbeddedDovecot,
  type EmbeddedDovecotOptions,
} from './dovecot-supervisor.js';
export {
  renderDovecotConfig,
  dovecotPaths,
  dovecotInstanceName,
  ssha512,
  type DovecotAccounts,
  type DovecotConfigOptions,
  type DovecotPaths,
} from './dovecot-config.js';
export { StoreHealthMonitor } from './store-health-monitor.js';
export { isInMailbox, type DeliveredCheck } from './lmtp-delivered-check.js';
