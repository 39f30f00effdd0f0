export { ConnectionGate, sourceOf } from './connection-gate.js';
export type { Admission, ConnectionLimits, ConnectionRefusal, ConnectionTicket } from './connection-gate.js';
export { checkOpenFiles, openFilesLimit } from './open-files.js';
export type { OpenFilesLimit, OpenFilesOutcome } from './open-files.js';
