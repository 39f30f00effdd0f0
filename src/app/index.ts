export { Gateway, describeAddresses, startGateway } from './gateway.js';
export type { GatewayAddresses, GatewayOptions } from './gateway.js';
export { PRIVATE_PARENT_STORE_ROOT, embeddedStoreDir, startBackends } from './backends.js';
export type { Backends, StoreEndpoints } from './backends.js';
export { readySummary } from './ready-summary.js';
export type { ReadySummaryInput } from './ready-summary.js';
