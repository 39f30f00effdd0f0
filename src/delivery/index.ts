export { Spool } from './spool.js';
export type { RecipientState, SpoolEnvelope, SpoolRecipient } from './spool-entry.js';
export { LocalDelivery } from './local-delivery.js';
export type {
  DeliveryObserver,
  LocalDeliveryDeps,
  LocalDeliveryOptions,
  LocalTransport,
  TransportResult,
} from './local-delivery.js';
export { buildDsn, dsnWanted } from './dsn.js';
export type { BuiltDsn, DsnAction, DsnInput, DsnPolicy, DsnRecipientReport } from './dsn.js';
