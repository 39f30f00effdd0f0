import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import type { Config } from '../config/index.js';
import type { AdminClient } from './admin-client.js';

/** What the `mssgw` commands get from the program; injected so tests and embedders can swap I/O. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Environment (MSSGW_ADMIN_URL, the configuration's MSSGW_* overrides). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Loads the gateway configuration, for the defaults of --api and --token-file. */
  loadConfig(env: Readonly<Record<string, string | undefined>>): Config;
  /**
   * Standard input, where a secret is read from so that it never appears on the command line (nor in
   * the shell history or the process list). Absent when the embedder has none to offer.
   */
  stdin?(): Readable & { readonly isTTY?: boolean };
}

/** What a command needs from the program: output, and a client built from the global options. */
export interface CliContext {
  readonly io: CliIo;
  /** The admin API client for the global options seen by `command` (--api, --token-file). */
  client(command: Command): AdminClient;
}
