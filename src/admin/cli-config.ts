import type * as ConfigModule from '../config/index.js';
import { GatewayError } from '../errors/index.js';

/**
 * The configuration module (zod and yaml: the largest part of a command's start-up), imported when a
 * command is about to run, by the program's preAction hook (buildCli): `mssgw --help` and a usage
 * error never load it. Actions and their synchronous helpers then read it through configModule().
 */
let loaded: typeof ConfigModule | undefined;

export async function loadConfigModule(): Promise<typeof ConfigModule> {
  return (loaded ??= await import('../config/index.js'));
}

/** The configuration module, within an action (the preAction hook has loaded it). */
export function configModule(): typeof ConfigModule {
  if (loaded === undefined)
    throw new GatewayError('INTERNAL', 'configModule() is called within an action of buildCli()');
  return loaded;
}
