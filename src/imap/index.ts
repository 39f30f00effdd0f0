export { ImapFrontEnd } from './imap-front-end.js';
export type { ImapAddresses, ImapFrontEndDeps } from './imap-front-end.js';
export { imapObserver } from './imap-metrics.js';
export { NOOP_IMAP_OBSERVER } from './imap-observer.js';
export type {
  ImapListenerName,
  ImapObserver,
  ImapPhase,
  ImapProtocolError,
  ImapRefusal,
} from './imap-observer.js';
export type { StoreAccess } from './login-flow.js';
export { StoreConnector, type StoreConnectorOptions } from './store-login.js';
export { imapFailureFor } from './responses.js';
export type { ImapFailure, ImapResponseCode } from './responses.js';
export type { ImapTlsMaterial } from './tls-upgrade.js';
