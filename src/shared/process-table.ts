import { readdir, readFile } from 'node:fs/promises';

/**
 * Linux process-table helpers for the embedded services (Redis, Dovecot). The gateway may have been
 * killed with SIGKILL and left its children running; before starting them again it must find and
 * stop exactly those processes, never an unrelated one that reused a pid. /proc/PID/cmdline is the
 * identity we check, since both programs put their socket or config path in it.
 */

/** Arguments of a running process, or undefined when it is gone or a zombie. */
export async function readCmdline(pid: number): Promise<string[] | undefined> {
  try {
    // A zombie keeps its /proc entry (and answers kill 0) but has no cmdline and holds nothing:
    // orphans reparented to an init that does not reap would otherwise look alive forever.
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    if (state === 'Z' || state === 'X') return undefined;
    const raw = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    if (raw === '') return undefined;
    return raw.replace(/\0$/, '').split('\0');
  } catch {
    return undefined;
  }
}

export async function isRunning(pid: number): Promise<boolean> {
  return (await readCmdline(pid)) !== undefined;
}

/** Pids of the live processes whose argument list satisfies `match`. */
export async function findProcesses(match: (argv: readonly string[]) => boolean): Promise<number[]> {
  const entries = await readdir('/proc');
  const found: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    const argv = await readCmdline(pid);
    if (argv && match(argv)) found.push(pid);
  }
  return found;
}

/** The pid written in a pidfile, or undefined when the file is missing or malformed. */
export async function readPidFile(file: string): Promise<number | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    return /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // Already gone (ESRCH): nothing left to stop.
  }
}

/** Polls `condition` every `intervalMs` until it holds or `timeoutMs` passes; returns the last answer. */
export async function waitFor(
  condition: () => Promise<boolean> | boolean,
  timeoutMs: number,
  intervalMs = 50,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

async function allGone(pids: readonly number[]): Promise<boolean> {
  for (const pid of pids) if (await isRunning(pid)) return false;
  return true;
}

/**
 * Stops processes: SIGTERM, wait up to `graceMs` for them to exit, then SIGKILL and wait again.
 * Returns the pids that needed SIGKILL (for the log).
 */
export async function terminateProcesses(pids: readonly number[], graceMs = 10_000): Promise<number[]> {
  if (pids.length === 0) return [];
  for (const pid of pids) signal(pid, 'SIGTERM');
  if (await waitFor(() => allGone(pids), graceMs)) return [];
  const stubborn: number[] = [];
  for (const pid of pids) {
    if (await isRunning(pid)) {
      stubborn.push(pid);
      signal(pid, 'SIGKILL');
    }
  }
  await waitFor(() => allGone(stubborn), 5_000);
  return stubborn;
}
