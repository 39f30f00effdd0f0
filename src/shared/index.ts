export { ConnectionGate, sourceOf } from './connection-gate.js';
export type { Admission, ConnectionLimits, ConnectionRefusal, ConnectionTicket } from './connection-gate.js';
