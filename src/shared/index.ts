export { systemClock } from './clock.js';
export type { Clock } from './clock.js';
export { SupervisedProcess } from './supervised-process.js';
export type { SupervisedProcessOptions } from './supervised-process.js';
export {
  findProcesses,
  isRunning,
  readCmdline,
  readPidFile,
  terminateProcesses,
  waitFor,
} from './process-table.js';
export {
  MAX_ADDRESS,
  MAX_DOMAIN,
  MAX_LOCAL_PART,
  addressKey,
  checkAddress,
  checkDomain,
  normalizeAddress,
  normalizeDomain,
  parseAddress,
} from './address.js';
export type { MailAddress, Parsed } from './address.js';
export { ConnectionGate, sourceOf } from './connection-gate.js';
export type { Admission, ConnectionLimits, ConnectionRefusal, ConnectionTicket } from './connection-gate.js';
export { checkOpenFiles, openFilesLimit } from './open-files.js';
export type { OpenFilesLimit, OpenFilesOutcome } from './open-files.js';
export { DotStuffer, ReplyReader } from './smtp-wire.js';
export type { WireFailure, WireFailureKind, WireReply } from './smtp-wire.js';
export { REFUSAL_DEADLINE_MS, REFUSAL_HANDSHAKES, TlsRefusals } from './tls-refusal.js';
export type { RefusalReplyOutcome, TlsRefusalsOptions } from './tls-refusal.js';
export { explainListen, listenError } from './listen-error.js';
export { sendEnvelope, sendMessage } from './smtp-envelope.js';
export type { EnvelopeCommands, EnvelopeOutcome, MessageProgress, WireSession } from './smtp-envelope.js';
export { generateJwkPair } from './jwk-pair.js';
export type { JwkPair, JwkPairAlg } from './jwk-pair.js';
