import net from 'node:net';
import path from 'node:path';
import { GatewayError, isGatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import {
  SupervisedProcess,
  findProcesses,
  readCmdline,
  readPidFile,
  terminateProcesses,
  waitFor,
} from '../shared/index.js';
import { prepareDovecotFiles, resolveDovecotAccounts, type ResolvedAccounts } from './dovecot-accounts.js';
import {
  assertDovecotDataDir,
  dovecotInstanceName,
  dovecotPaths,
  renderDovecotConfig,
  renderMasterPasswd,
  type DovecotPaths,
} from './dovecot-config.js';
import { loadOrCreateMasterPassword } from './master-secret.js';
import type { ImapEndpoint } from './store-endpoints.js';
import { probeImap, probeLmtp } from './store-probe.js';

export interface EmbeddedDovecotOptions {
  /** The gateway's data directory; Dovecot lives in `<dataDir>/dovecot`. */
  readonly dataDir: string;
  /** dovecot program. Default `dovecot` (from PATH). */
  readonly binary?: string;
  /** System user owning the mail (root only). Default `mail`. */
  readonly mailUser?: string;
  /** Master user the gateway logs in as. Default `mssgw`. */
  readonly masterUser?: string;
  /** Loopback port of its IMAP service (`store.embeddedImapPort`). Default: a free port at each start. */
  readonly imapPort?: number;
  readonly logger: Logger;
}

export interface EmbeddedDovecot {
  readonly imap: ImapEndpoint;
  readonly lmtp: { readonly path: string };
  readonly masterUser: string;
  readonly masterPassword: string;
  /** Pid of the current Dovecot master process (changes after a supervised restart). */
  readonly pid: number;
  /** SIGTERM, then resolves once the master and all its service processes have exited. */
  stop(): Promise<void>;
}

const PORT_ATTEMPTS = 5;

/**
 * Processes of the Dovecot of one data directory: the master (its command line names our config
 * file) and its service processes (their titles start with `dovecot-<instance>/`). Service
 * processes outlive a SIGKILLed master as long as a client keeps them busy.
 */
export async function findEmbeddedDovecotProcesses(dataDir: string): Promise<number[]> {
  const paths = dovecotPaths(dataDir);
  const instance = dovecotInstanceName(dataDir);
  return findProcesses((argv) => isOurDovecot(argv, paths, instance));
}

function isOurDovecot(argv: readonly string[], paths: DovecotPaths, instance: string): boolean {
  if (argv[0]?.startsWith(`dovecot-${instance}/`)) return true;
  const configAt = argv.indexOf('-c');
  return configAt >= 0 && argv[configAt + 1] === paths.configFile;
}

async function stopStaleDovecot(paths: DovecotPaths, instance: string, logger: Logger): Promise<void> {
  const pids = new Set(await findProcesses((argv) => isOurDovecot(argv, paths, instance)));
  const master = await readPidFile(paths.pidFile);
  if (master !== undefined) {
    const argv = await readCmdline(master);
    if (argv && isOurDovecot(argv, paths, instance)) pids.add(master);
  }
  if (pids.size === 0) return;
  logger.warn(
    { event: 'dovecot.stale.stopping', pids: [...pids] },
    'stopping a Dovecot left by a previous run',
  );
  const killed = await terminateProcesses([...pids], 10_000);
  if (killed.length > 0)
    logger.warn({ event: 'dovecot.stale.killed', pids: killed }, 'stale Dovecot needed SIGKILL');
}

/** A loopback port nobody listens on right now (Dovecot cannot be told to bind port 0). */
function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address
          ? resolve(address.port)
          : reject(new GatewayError('INTERNAL', 'no port')),
      );
    });
  });
}

async function waitForServices(imap: ImapEndpoint, lmtpPath: string, signal: AbortSignal): Promise<void> {
  const ready = await waitFor(
    async () =>
      signal.aborted ||
      ((await probeImap(imap, { timeoutMs: 1_000 })) &&
        (await probeLmtp({ path: lmtpPath }, { timeoutMs: 1_000 }))),
    Number.POSITIVE_INFINITY,
    100,
  );
  if (!ready || signal.aborted)
    throw new GatewayError('STORE_UNAVAILABLE', 'dovecot exited before it answered');
}

function isPortTaken(err: unknown): boolean {
  const output = isGatewayError(err) ? err.details['output'] : undefined;
  return typeof output === 'string' && output.includes('Address already in use');
}

interface StartContext {
  readonly paths: DovecotPaths;
  readonly accounts: ResolvedAccounts;
  readonly instance: string;
  readonly binary: string;
  readonly masterUser: string;
  readonly masterPasswd: string;
  readonly logger: Logger;
}

async function startOnPort(ctx: StartContext, port: number): Promise<SupervisedProcess> {
  const { paths, logger } = ctx;
  const config = renderDovecotConfig({
    dataDir: path.dirname(paths.root),
    imapPort: port,
    masterUser: ctx.masterUser,
    accounts: ctx.accounts,
  });
  await prepareDovecotFiles(paths, ctx.accounts, { masterPasswd: ctx.masterPasswd, config }, logger);
  const imap = { host: '127.0.0.1', port };
  return SupervisedProcess.start({
    name: 'dovecot',
    command: ctx.binary,
    args: ['-F', '-c', paths.configFile],
    outputFile: paths.outputFile,
    logger,
    failureCode: 'STORE_UNAVAILABLE',
    missingHint: 'install dovecot-imapd and dovecot-lmtpd, or set store.dovecotBinary (or store.imap/lmtp)',
    beforeStart: () => stopStaleDovecot(paths, ctx.instance, logger),
    ready: (signal) => waitForServices(imap, paths.lmtpSocket, signal),
    // The master's exit does not wait for every service process; a restart must find none.
    afterStop: async () => {
      const left = await findProcesses((argv) => isOurDovecot(argv, paths, ctx.instance));
      await terminateProcesses(left, 10_000);
    },
  });
}

/**
 * Starts the embedded Dovecot (ARCHITECTURE.md §7): writes its configuration under the data
 * directory, stops a Dovecot a SIGKILLed gateway left behind, starts `dovecot -F` as a child on a
 * free loopback IMAP port and its LMTP unix socket, and waits until both greet. Supervised: an
 * unexpected exit is logged and followed by a restart (same port) with backoff.
 */
export async function startEmbeddedDovecot(options: EmbeddedDovecotOptions): Promise<EmbeddedDovecot> {
  assertDovecotDataDir(options.dataDir);
  const { logger } = options;
  const paths = dovecotPaths(options.dataDir);
  const masterUser = options.masterUser ?? 'mssgw';
  const accounts = await resolveDovecotAccounts(options.mailUser ?? 'mail', logger);
  const masterPassword = await loadOrCreateMasterPassword(paths.secretFile);
  const ctx: StartContext = {
    paths,
    accounts,
    instance: dovecotInstanceName(options.dataDir),
    binary: options.binary ?? 'dovecot',
    masterUser,
    masterPasswd: renderMasterPasswd(masterUser, masterPassword),
    logger,
  };
  for (let attempt = 1; ; attempt++) {
    const port = options.imapPort ?? (await freeLoopbackPort());
    try {
      const supervised = await startOnPort(ctx, port);
      logger.info({ event: 'dovecot.ready', imapPort: port, lmtp: paths.lmtpSocket }, 'store ready');
      return {
        imap: { host: '127.0.0.1', port },
        lmtp: { path: paths.lmtpSocket },
        masterUser,
        masterPassword,
        get pid() {
          return supervised.pid;
        },
        stop: () => supervised.stop(),
      };
    } catch (err) {
      if (options.imapPort !== undefined && isPortTaken(err)) {
        throw new GatewayError(
          'STORE_UNAVAILABLE',
          `the embedded Dovecot cannot listen on 127.0.0.1:${port} (store.embeddedImapPort): another process holds it; stop that process or choose another port`,
          { port },
          { cause: err },
        );
      }
      // Another program may take the port between our probe and Dovecot's bind: pick another.
      if (!isPortTaken(err) || attempt >= PORT_ATTEMPTS) throw err;
      logger.warn({ event: 'dovecot.port.taken', port, attempt }, 'IMAP port taken, retrying with another');
    }
  }
}
