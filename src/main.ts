import path from 'node:path';
import { Gateway, describeAddresses, readySummary } from './app/index.js';
import { ConfigError, loadConfig } from './config/index.js';
import { isGatewayError } from './errors/index.js';
import { type Logger, createLogger } from './observability/index.js';
import { SupervisedProcess, checkOpenFiles } from './shared/index.js';

/** EX_CONFIG from sysexits.h: the configuration is wrong, restarting will not help. */
const EXIT_CONFIG = 78;

/**
 * Process entry: load the configuration (listing every bad key and refusing to start), start the
 * gateway, drain on SIGTERM/SIGINT, reload trust material and whitelist on SIGHUP.
 */
async function main(): Promise<void> {
  // From the process start: Node's own start and the import of every module of the gateway.
  const modulesMs = Math.round(performance.now());
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(`mssgw: ${err.message}`);
      process.exit(EXIT_CONFIG);
    }
    throw err;
  }
  const configMs = Math.round(performance.now()) - modulesMs;
  const logger = createLogger({ level: config.log.level });
  // Descriptors for every connection limit (IMAP sessions hold two), plus room for the rest.
  const { smtp, imap } = config;
  const files = checkOpenFiles(
    smtp.mx.maxConnections + smtp.submission.maxConnections + 2 * imap.maxConnections + 1024,
  );
  if (files.kind === 'short')
    logger.warn({ event: 'process.nofile.short', ...files }, 'open-files limit below the connection limits');
  // Signals are caught from here on: a stop asked for while Redis and Dovecot are starting is
  // honoured once start-up has finished, so nothing started is left orphaned.
  // The stop always ends: past the drain and 10 s for the rest, children are killed and we exit.
  // Nothing acknowledged is lost: accepted messages are in the spool, which the next start reads.
  const stopLimitMs = (config.delivery.drainSeconds + 10) * 1000;
  let onSignal = (signal: string) => {
    if (stopRequested) return;
    stopRequested = signal;
    SupervisedProcess.haltRestarts();
    logger.info({ event: 'gateway.stop_requested', signal }, 'stop requested during start-up');
    // A start-up that never ends (its Redis or Dovecot killed under it, its data directory
    // removed) must not make the stop wait for ever: the same deadline as a stop.
    armStopDeadline(logger, stopLimitMs);
  };
  let stopRequested: string | undefined;
  process.on('SIGTERM', () => onSignal('SIGTERM'));
  process.on('SIGINT', () => onSignal('SIGINT'));
  let gateway: Gateway;
  try {
    // A start that fails stops what it had started (a BullMQ worker's command caught by the close
    // was seen to reject unhandled and turn exit 78 into exit 1 with a stack: 1 in 5 campaign runs).
    gateway = await Gateway.start(config, { logger, onStartAborted: () => (closing = logger) });
  } catch (err) {
    closing = logger;
    const code = isGatewayError(err) ? err.code : 'INTERNAL';
    logger.fatal(
      { event: 'gateway.start_failed', code, err: (err as Error).message },
      'gateway did not start',
    );
    console.error(`mssgw: start failed (${code}): ${(err as Error).message}`);
    logger.flush();
    process.exit(
      isGatewayError(err) && (code === 'CONFIG_INVALID' || code.startsWith('PKI')) ? EXIT_CONFIG : 1,
    );
  }
  const listening = describeAddresses(gateway.addresses);
  const startedInMs = Math.round(performance.now());
  logger.info(
    {
      event: 'gateway.ready',
      mode: config.mode,
      dataDir: config.dataDir,
      listening,
      embedded: gateway.backends.embedded,
      // Where the start went (ms): `ready` counts from the process start (npm's own time before it
      // is not included); the steps of Gateway.start are in StartTimings.
      startMs: { modules: modulesMs, config: configMs, ...gateway.startSteps, ready: startedInMs },
    },
    'gateway ready',
  );
  // On a terminal, a person reads this; piped (tests, CI, a service manager) only the JSON lines go out.
  if (process.stdout.isTTY) {
    process.stdout.write(
      readySummary({
        mode: config.mode,
        dataDir: path.resolve(config.dataDir),
        pkiDir: path.resolve(config.pkiDir),
        listening,
        embedded: gateway.backends.embedded,
        startedInMs,
      }),
    );
  }

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    closing = logger;
    logger.info({ event: 'gateway.stopping', signal }, 'stopping');
    SupervisedProcess.haltRestarts();
    armStopDeadline(logger, stopLimitMs);
    void gateway.stop().then(
      () => {
        logger.info({ event: 'gateway.stopped' }, 'stopped');
        logger.flush();
        process.exit(0);
      },
      (err: unknown) => {
        logger.fatal({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  onSignal = shutdown;
  process.on('SIGHUP', () => void gateway.reload());
  if (stopRequested) shutdown(stopRequested);
}

let stopDeadline: NodeJS.Timeout | undefined;

/**
 * Past `limitMs` from now, children get SIGTERM, then SIGKILL a second later, and we exit 1. Armed
 * again from zero when the orderly stop begins after a start-up that a signal interrupted, so that
 * the stop has its whole drain. The deadline fires 4 s before the limit: 1 s for the children's
 * SIGTERM, then up to 3 s for timers that run late on a busy machine and for the exit itself (at a
 * load of 15 on 2 cores, 1 s of slack was seen to be 0.4 s short). An orderly stop takes ~2 s.
 */
function armStopDeadline(logger: Logger, limitMs: number): void {
  clearTimeout(stopDeadline);
  stopDeadline = setTimeout(() => {
    logger.fatal({ event: 'gateway.stop_timeout', limitMs }, 'stop took too long: stopping children');
    SupervisedProcess.signalAll('SIGTERM');
    setTimeout(() => {
      SupervisedProcess.signalAll('SIGKILL');
      logger.flush();
      process.exit(1);
    }, 1_000);
  }, limitMs - 4_000).unref();
}

/** Set (to the gateway's logger) once a stop began: connections are being closed under commands in flight. */
let closing: Logger | undefined;

process.on('unhandledRejection', (reason) => {
  // While stopping, connections are closed under commands still in flight (ioredis rejects a
  // command caught by its connection's close); such a rejection changes nothing, every durable step
  // being behind us, and the orderly stop decides the exit code. It is told apart by the stop being
  // under way, not by its text.
  if (closing) {
    closing.warn(
      { event: 'gateway.stop_rejection', err: (reason as Error | undefined)?.message },
      'rejection while stopping; ignored',
    );
    return;
  }
  console.error('mssgw: unhandled rejection', reason);
  process.exit(1);
});

void main();
