import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { GatewayError } from '../errors/index.js';
import type { CliIo } from './cli-context.js';

/**
 * `mssgw dev-token --subject ID [--ttl S] [--audience AUD] [--dir DIR]`: prints an access token of the
 * development issuer on stdout and nothing else, so that `TOKEN=$(npx mssgw dev-token ...)` works.
 * Refused when the configuration's mode is production (a production gateway never trusts it).
 */
export function registerDevTokenCommand(program: Command, io: CliIo): void {
  program
    .command('dev-token')
    .description(
      'print an access token of the development issuer, for XOAUTH2/OAUTHBEARER (never for production)',
    )
    .requiredOption('--subject <id>', "the person's national id: 8 + RPPS number, or 0 + ADELI number")
    // The upper bound is checked once the issuer's module is loaded: importing it for the option
    // parser would slow every other command down.
    .option('--ttl <seconds>', 'lifetime in seconds, from 1 to a day', parseTtl, 3600)
    .option('--audience <aud>', 'aud claim, when auth.issuers checks one')
    .option(
      '--dir <dir>',
      'development PKI folder holding dev-issuer/ (default: pkiDir of the configuration)',
    )
    .action(
      async (opts: { subject: string; ttl: number; audience?: string; dir?: string }, command: Command) => {
        // The development issuer's own file, a light surface of auth/ (eslint.config.js,
        // LIGHT_SURFACES): the folder's index would bring jose, the token verifier and pki/ with
        // node-forge, ~30 ms of CPU at every call for nothing this command uses.
        const { DEV_TOKEN_MAX_TTL_SECONDS, mintDevToken } = await import('../auth/dev-issuer.js');
        if (opts.ttl > DEV_TOKEN_MAX_TTL_SECONDS) {
          command.error(
            `error: option '--ttl <seconds>' argument '${opts.ttl}' is invalid. ${ttlHint(DEV_TOKEN_MAX_TTL_SECONDS)}`,
            { code: 'commander.invalidArgument' },
          );
        }
        const dir = path.resolve(opts.dir ?? developmentPkiDir(io));
        const token = await mintDevToken({
          pkiDir: dir,
          subject: opts.subject,
          ttlSeconds: opts.ttl,
          ...(opts.audience === undefined ? {} : { audience: opts.audience }),
        });
        io.stdout(`${token}\n`);
      },
    );
}

function developmentPkiDir(io: CliIo): string {
  const config = io.loadConfig(io.env);
  if (config.mode !== 'development') {
    throw new GatewayError(
      'CONFIG_INVALID',
      'dev-token needs mode development: a production gateway does not trust the development issuer',
    );
  }
  return config.pkiDir;
}

function parseTtl(value: string): number {
  const n = Number(value);
  if (/^[0-9]+$/.test(value) && n >= 1) return n;
  throw new InvalidArgumentError('give a whole number of seconds, at least 1 (at most a day)');
}

function ttlHint(max: number): string {
  return `give a whole number of seconds from 1 to ${max}`;
}
