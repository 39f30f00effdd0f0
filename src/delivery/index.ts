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
