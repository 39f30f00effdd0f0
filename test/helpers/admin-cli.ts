import { spawn } from 'node:child_process';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { buildCli, runCli } from '../../src/admin/index.js';
import { loadConfig } from '../../src/config/index.js';
import { nodeEntry } from './node-entry.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface CliRunOptions {
  /** Written to standard input, which is then closed (`mssgw bal secret set`). */
  readonly stdin?: string;
}

/**
 * The environment `mssgw` gets in a test: the given one only (plus PATH/HOME), so the developer's
 * MSSGW_* variables and the repository's config/ folder cannot leak into a test; pass
 * MSSGW_CONFIG_DIR to choose one.
 */
function cliEnv(env: Record<string, string>): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    MSSGW_CONFIG_DIR: '/nonexistent',
    ...env,
  };
}

/**
 * Runs `mssgw` as a real process, the way an operator runs it (its build when current, else the
 * source: see nodeEntry). A process costs 1 to 5 s of a busy machine: use it for what only a
 * process shows (the exit code it ends with, its output flushed before it exits, its standard
 * input, its environment), and runMssgwInProcess for what the commands say and do.
 */
export function runMssgw(
  args: readonly string[],
  env: Record<string, string> = {},
  options: CliRunOptions = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...nodeEntry('src/admin/cli-main.ts'), ...args], {
      cwd: ROOT,
      env: cliEnv(env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    // Without input, standard input is closed at once: empty, and not a terminal. A command that
    // exits without reading it (EPIPE) is judged by its exit code and output, not by this pipe.
    child.stdin.on('error', () => {});
    child.stdin.end(options.stdin ?? '', 'utf8');
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/**
 * Runs the very program `mssgw` runs (buildCli and runCli, as src/admin/cli-main.ts does) in this
 * process, through the I/O the CLI takes for embedders (CliIo): same arguments, same environment
 * rules, the same exit code and output as runMssgw, in milliseconds instead of seconds.
 */
export async function runMssgwInProcess(
  args: readonly string[],
  env: Record<string, string> = {},
  options: CliRunOptions = {},
): Promise<CliRun> {
  let stdout = '';
  let stderr = '';
  const io = {
    stdout: (text: string) => void (stdout += text),
    stderr: (text: string) => void (stderr += text),
    env: cliEnv(env),
    loadConfig: (e: Readonly<Record<string, string | undefined>>) => loadConfig({ env: e, cwd: ROOT }),
    // A pipe, as runMssgw gives: not a terminal, ended after the given text.
    stdin: () =>
      Object.assign(Readable.from(options.stdin === undefined ? [] : [Buffer.from(options.stdin, 'utf8')]), {
        isTTY: false,
      }),
  };
  const code = await runCli(buildCli(io), ['node', 'mssgw', ...args], io);
  return { code, stdout, stderr };
}
