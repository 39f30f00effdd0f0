import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import type { Command } from 'commander';
import { GatewayError } from '../errors/index.js';
import type { SecretStatus } from './secret-status.js';
import type { CliContext, CliIo } from './cli-context.js';

/**
 * `mssgw bal secret ...`: the operator-managed secret of a mailbox (PLAIN/LOGIN, only for the types
 * in `auth.passwordTypes`). The secret is read from a file or standard input, never from an
 * argument, so it stays out of the shell history and the process list; it is never printed.
 */
export function registerBalSecretCommands(bal: Command, ctx: CliContext): Command {
  const secret = bal
    .command('secret')
    .description('set, remove or show the PLAIN/LOGIN secret of a mailbox (types in auth.passwordTypes)');
  const out = (text: string) => ctx.io.stdout(text);

  secret
    .command('set')
    .description('set or replace the secret of a mailbox, read from --secret-file or standard input')
    .argument('<address>', 'mailbox address')
    .option('--secret-file <file>', 'file holding the secret (one trailing newline is ignored)')
    .addHelpText(
      'after',
      '\nWithout --secret-file the secret is read from standard input, e.g.\n' +
        '  mssgw bal secret set team@op.mssante.test < secret.txt\n' +
        'It never goes on the command line.',
    )
    .action(async (address: string, opts: { secretFile?: string }, cmd: Command) => {
      const value =
        opts.secretFile === undefined ? await secretFromStdin(ctx.io, cmd) : secretFromFile(opts.secretFile);
      await ctx.client(cmd).setSecret(address, value);
      out(`secret of ${address} set: PLAIN/LOGIN logins to it now take this secret\n`);
    });

  secret
    .command('remove')
    .description('remove the secret of a mailbox: PLAIN/LOGIN logins to it are refused from now on')
    .argument('<address>', 'mailbox address')
    .action(async (address: string, _opts: unknown, cmd: Command) => {
      await ctx.client(cmd).removeSecret(address);
      out(`secret of ${address} removed: PLAIN/LOGIN logins to it are refused\n`);
    });

  secret
    .command('show')
    .description('whether a mailbox has a secret and whether its type allows one (never the secret)')
    .argument('<address>', 'mailbox address')
    .option('--json', 'print { address, type, hasSecret, allowed } as JSON')
    .action(async (address: string, opts: { json?: boolean }, cmd: Command) => {
      const status = await ctx.client(cmd).secretStatus(address);
      out(opts.json ? `${JSON.stringify(status, null, 2)}\n` : formatStatus(status));
    });

  return secret;
}

/** More than a secret can be (the API takes 1024 bytes): a wrong file or stream, not read further. */
const MAX_INPUT_BYTES = 64 * 1024;

function secretFromFile(file: string): string {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new GatewayError(
      'CLI_INPUT_INVALID',
      `cannot read the secret file ${file} (${why})`,
      {},
      { cause: err },
    );
  }
  return decodeSecret(bytes, `the secret file ${file}`);
}

async function secretFromStdin(io: CliIo, cmd: Command): Promise<string> {
  const stdin = io.stdin?.();
  if (stdin === undefined) usage(cmd, 'no standard input here: pass --secret-file FILE');
  if (stdin.isTTY) {
    // Typed at a terminal, the secret would be echoed on screen: ask for a pipe or a file instead.
    usage(
      cmd,
      'the secret is read from standard input, which is a terminal: pipe it in ' +
        '(mssgw bal secret set ADDRESS < FILE) or pass --secret-file FILE',
    );
  }
  return decodeSecret(await readAtMost(stdin, MAX_INPUT_BYTES), 'standard input');
}

function decodeSecret(bytes: Buffer, source: string): string {
  if (bytes.length > MAX_INPUT_BYTES) {
    throw new GatewayError(
      'CLI_INPUT_INVALID',
      `${source} holds more than ${MAX_INPUT_BYTES} bytes: that is not a mailbox secret`,
    );
  }
  // Files and `echo` end with a newline that is not part of the secret (as for admin.tokenFile).
  const secret = bytes.toString('utf8').replace(/\r?\n$/, '');
  if (secret === '')
    throw new GatewayError('CLI_INPUT_INVALID', `${source} is empty: it must hold the secret`);
  return secret;
}

/** The stream's bytes, stopping once past `limit` (the caller then refuses them). */
async function readAtMost(stream: Readable, limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const bytes = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : (chunk as Buffer);
    chunks.push(bytes);
    size += bytes.length;
    if (size > limit) break;
  }
  return Buffer.concat(chunks);
}

function usage(cmd: Command, message: string): never {
  // A usage error (exit 2): nothing was sent to the API.
  cmd.error(`error: ${message}`, { exitCode: 2, code: 'mssgw.secretInput' });
}

function formatStatus(s: SecretStatus): string {
  const allowed = s.allowed
    ? `yes (${s.type} is in auth.passwordTypes)`
    : `no (${s.type} is not in auth.passwordTypes)`;
  return `address:   ${s.address}\ntype:      ${s.type}\nhasSecret: ${s.hasSecret ? 'yes' : 'no'}\nallowed:   ${allowed}\n`;
}
