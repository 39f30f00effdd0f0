import { userInfo } from 'node:os';
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import type { Config } from '../config/index.js';
import { GatewayError, isGatewayError } from '../errors/index.js';
import { AdminApiError, AdminClient, AdminUnreachableError } from './admin-client.js';
import { registerBalCommands } from './cli-bal.js';
import { configModule, loadConfigModule } from './cli-config.js';
import { registerDevTokenCommand } from './cli-dev-token.js';
import { registerDirectoryCommands } from './cli-directory.js';
import { registerDnsCommands } from './cli-dns.js';
import { registerIndicatorCommands } from './cli-indicators.js';
import { registerJournalCommands } from './cli-journal.js';
import { registerLifecycleCommands } from './cli-lifecycle.js';
import { registerLocalCommands } from './cli-local.js';
import { registerDirectoryDriftCommand } from './cli-publication.js';
import { registerQueueCommands } from './cli-queue.js';
import { registerRightsCommands } from './cli-rights.js';
import type { CliIo } from './cli-context.js';

/** Exit codes of `mssgw` (documented in its help). */
export const EXIT = {
  OK: 0,
  /** The API refused or failed the request, or a local file (configuration, token) could not be used. */
  REFUSED: 1,
  /** Bad command line (commander's errors, a missing confirmation). */
  USAGE: 2,
  /** The admin API could not be reached. */
  UNREACHABLE: 3,
  /** `queue show|retry|delete` of a job that is finished (delivered, failed or deleted): nothing to do. */
  FINISHED: 4,
} as const;

export const DEFAULT_ADMIN_URL = 'http://127.0.0.1:9465';

export function processIo(): CliIo {
  return {
    stdout: (text) => process.stdout.write(text),
    stderr: (text) => process.stderr.write(text),
    env: process.env,
    // Loaded by the preAction hook of buildCli, so that --help and usage errors do without it.
    loadConfig: (env) => configModule().loadConfig({ env }),
    // A getter, not a value: touching process.stdin opens it, which only `bal secret set` needs.
    stdin: () => process.stdin,
  };
}

/**
 * The `mssgw` program: global options, the `bal` and `rights` commands. More command groups can be registered
 * on the returned program (as registerBalCommands does) before it is run with runCli.
 */
export function buildCli(io: CliIo = processIo()): Command {
  const program = new Command('mssgw')
    .description(
      'Administer the MSSanté gateway (bal, rights: through its admin API; dev-pki, config: local files)',
    )
    .option(
      '--api <url>',
      `admin API URL (default: $MSSGW_ADMIN_URL, else admin.host/port of the configuration, else ${DEFAULT_ADMIN_URL})`,
      parseUrl,
    )
    .option(
      '--token-file <file>',
      'file holding the admin API token (default: admin.tokenFile of the configuration)',
    )
    .addHelpText(
      'after',
      '\nExit codes: 0 done; 1 the API refused the request (the message says why) or a local file ' +
        'could not be used; 2 usage error; ' +
        '3 the admin API cannot be reached (is the gateway running? npm start); ' +
        '4 queue show/retry/delete of a finished job (the message says what became of it).',
    )
    .showHelpAfterError('(add --help for usage)')
    // Usage errors are thrown rather than exiting, so runCli maps them to exit code 2.
    .exitOverride()
    .configureOutput({ writeOut: (text) => io.stdout(text), writeErr: (text) => io.stderr(text) })
    // Every command's action reads the configuration (or a secret file) through this module.
    .hook('preAction', async () => void (await loadConfigModule()));
  const ctx = { io, client: (command: Command) => clientFor(command, io) };
  registerBalCommands(program, ctx);
  registerRightsCommands(program, ctx);
  registerQueueCommands(program, ctx);
  registerLocalCommands(program, io);
  registerLifecycleCommands(program, ctx);
  registerIndicatorCommands(program, io);
  registerJournalCommands(program, io);
  registerDnsCommands(program, io);
  registerDirectoryCommands(program, io);
  // After the mirrors' commands: `drift` joins their `directory` group.
  registerDirectoryDriftCommand(program, ctx);
  registerDevTokenCommand(program, io);
  return program;
}

/** Parses and runs; never throws. Returns the exit code. */
export async function runCli(
  program: Command,
  argv: readonly string[],
  io: CliIo = processIo(),
): Promise<number> {
  try {
    await program.parseAsync(argv);
    return EXIT.OK;
  } catch (err) {
    return reportFailure(err, io);
  }
}

function reportFailure(err: unknown, io: CliIo): number {
  if (err instanceof CommanderError) {
    // Commander has printed its message; --help and --version end with exit code 0.
    return err.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  if (err instanceof AdminUnreachableError) {
    io.stderr(
      `error: ${err.message}; the gateway must be running (npm start) with its admin API at that URL, ` +
        'or pass --api URL / set MSSGW_ADMIN_URL\n',
    );
    return EXIT.UNREACHABLE;
  }
  if (err instanceof AdminApiError && err.problemCode === 'QUEUE_JOB_FINISHED') {
    // Not a failure to fix: the story of the job (delivered to …, at …), for scripts exit code 4.
    io.stderr(`${err.detail}\n`);
    return EXIT.FINISHED;
  }
  if (err instanceof AdminApiError) {
    io.stderr(`error: ${err.detail} (${err.problemCode})\n`);
    return EXIT.REFUSED;
  }
  if (isGatewayError(err) && err.code === 'CLI_INPUT_INVALID') {
    // The message names the file or input to fix; the code would add nothing for the operator.
    io.stderr(`error: ${err.message}\n`);
    return EXIT.REFUSED;
  }
  if (isGatewayError(err)) {
    io.stderr(`error: ${err.message} (${err.code})\n`);
    return EXIT.REFUSED;
  }
  io.stderr(`error: ${err instanceof Error ? err.message : String(err)}\n`);
  return EXIT.REFUSED;
}

function parseUrl(value: string): string {
  try {
    const url = new URL(value);
    if (url.protocol === 'http:' || url.protocol === 'https:') return value;
  } catch {
    // Reported below.
  }
  throw new InvalidArgumentError('give an http:// or https:// URL, e.g. http://127.0.0.1:9465');
}

function clientFor(command: Command, io: CliIo): AdminClient {
  const opts = command.optsWithGlobals<{ api?: string; tokenFile?: string }>();
  // The configuration is read only for a default that was not given on the command line.
  let config: Config | undefined;
  const configured = (): Config => (config ??= readConfig(io));
  const baseUrl = opts.api ?? io.env.MSSGW_ADMIN_URL ?? urlOf(configured());
  const tokenFile = opts.tokenFile ?? configured().admin.tokenFile;
  const token = tokenFile === undefined ? undefined : readToken(tokenFile);
  return new AdminClient({
    baseUrl,
    ...(token === undefined ? {} : { token }),
    actor: `cli:${operatorName(io)}`,
  });
}

function readConfig(io: CliIo): Config {
  try {
    return io.loadConfig(io.env);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new GatewayError(
      'CLI_INPUT_INVALID',
      `cannot read the gateway configuration for the admin API defaults: ${why}\n` +
        'fix it, or pass --api URL and --token-file FILE',
    );
  }
}

function urlOf(config: Config): string {
  const { host, port } = config.admin;
  // A wildcard listen address is reached through loopback.
  const target = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  return `http://${target.includes(':') ? `[${target}]` : target}:${port}`;
}

function readToken(file: string): string {
  let token: string;
  try {
    token = configModule().readSecretFile(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new GatewayError(
      'CLI_INPUT_INVALID',
      `cannot read the admin token file ${file} (${why}); pass --token-file FILE`,
      {},
      { cause: err },
    );
  }
  if (token.trim() === '') {
    throw new GatewayError(
      'CLI_INPUT_INVALID',
      `the admin token file ${file} is empty; pass --token-file FILE`,
    );
  }
  return token;
}

function operatorName(io: CliIo): string {
  try {
    return userInfo().username;
  } catch {
    // No passwd entry (some containers): fall back to the environment.
    return io.env.USER ?? io.env.LOGNAME ?? 'unknown';
  }
}
