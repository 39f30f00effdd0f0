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
