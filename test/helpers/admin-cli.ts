import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CliRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `mssgw` from source as a real process (node + tsx), the way an operator runs it. The
 * environment is the given one only (plus PATH/HOME), so the developer's MSSGW_* variables and the
 * repository's config/ folder cannot leak into a test: pass MSSGW_CONFIG_DIR to choose one.
 * `stdin` is written to the process's standard input, then closed (`mssgw bal secret set`).
 */
export function runMssgw(
  args: readonly string[],
  env: Record<string, string> = {},
  options: { readonly stdin?: string } = {},
): Promise<CliRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/admin/cli-main.ts', ...args], {
      cwd: ROOT,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        MSSGW_CONFIG_DIR: '/nonexistent',
        ...env,
      },
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
