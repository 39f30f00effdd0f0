import path from 'node:path';
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import { configModule } from './cli-config.js';
import type { CliIo } from './cli-context.js';

/**
 * Commands that work on this machine's files without the gateway running: the development PKI and
 * the configuration check.
 */
export function registerLocalCommands(program: Command, io: CliIo): void {
  program
    .command('dev-pki')
    .description('(re)generate the development PKI and whitelist (never for production)')
    .option('--dir <dir>', 'output folder (default: pkiDir of the configuration, certs-dev)')
    .action(async (opts: { dir?: string }) => {
      const { generateDevPki } = await import('../pki/index.js');
      const dir = path.resolve(opts.dir ?? io.loadConfig(io.env).pkiDir);
      const manifest = await generateDevPki(dir);
      io.stdout(
        `development PKI written to ${dir} (${Object.keys(manifest.leaves).length} certificates, whitelist.xml)\n`,
      );
      io.stdout('never use these certificates in production: a production configuration refuses them\n');
    });

  const config = program.command('config').description('inspect the configuration');
  config
    .command('check')
    .description('load and validate the configuration (config/ files, MSSGW_CONFIG, MSSGW_* variables)')
    .option(
      '--json',
      'print the effective configuration as JSON, or { "valid": false, "problems": [{ key, message, source }] }',
    )
    .action((opts: { json?: boolean }) => {
      let c: Config;
      try {
        c = io.loadConfig(io.env);
      } catch (err) {
        if (!opts.json || !(err instanceof configModule().ConfigError)) throw err;
        // A script reading --json gets the problems in the same format as a valid answer.
        io.stdout(`${JSON.stringify({ valid: false, problems: err.issues }, null, 2)}\n`);
        throw new GatewayError(
          'CLI_INPUT_INVALID',
          `invalid configuration (${err.issues.length} problems listed on standard output)`,
        );
      }
      if (opts.json) io.stdout(`${JSON.stringify(c, null, 2)}\n`);
      else io.stdout(`configuration valid (mode ${c.mode}, data directory ${c.dataDir})\n`);
    });
  config
    .command('env')
    .description('list the environment variable that overrides each setting')
    .action(() => {
      for (const v of configModule().environmentVariables()) io.stdout(`${v.name}\t${v.key}\n`);
    });
}
