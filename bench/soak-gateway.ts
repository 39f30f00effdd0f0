import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { devPkiSettings } from '../src/pki/index.js';

/**
 * The gateway under soak: `src/main.ts` in a child process (so that it can be killed with -9 and
 * its file descriptors and RSS read from /proc), on the embedded default (its own Redis and
 * Dovecot under the soak's folder), every listener on an ephemeral loopback port.
 */

/** Open files the gateway may hold: room for the 10,000 idle connections and more. */
export const GATEWAY_NOFILE = 65_536;

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface SoakPorts {
  readonly mx: number;
  readonly submission: number;
  readonly submissionTls: number;
  readonly imap: number;
  readonly imapTls: number;
  readonly admin: number;
}

export interface RunningGateway {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly ports: SoakPorts;
  /** Whether the process exited without us asking (a crash). */
  readonly crashed: () => boolean;
  readonly exited: Promise<void>;
  /** Non-JSON stderr lines (the log must be JSON only). */
  readonly nonJsonLines: () => number;
  /** Marks the coming exit as ours (kill -9 loop, final stop), not a crash. */
  readonly expectExit: () => void;
}

/** The configuration file of the soak gateway, written once under `root`. */
export function writeSoakConfig(root: string): string {
  const pki = devPkiSettings(path.join(root, 'pki'));
  const config = {
    dataDir: path.join(root, 'var'),
    ...pki,
    // Deadlines before TLS and before login of 20 s (defaults 30 s and 60 s): a connection that
    // never speaks must be closed by them before the fuzz calls it a hang (HANG_MS * 2, 30 s).
    smtp: {
      mx: { host: '127.0.0.1', port: 0, preTlsTimeoutSeconds: 20 },
      submission: { host: '127.0.0.1', port: 0, tlsPort: 0, preauthTimeoutSeconds: 20 },
    },
    imap: { host: '127.0.0.1', port: 0, tlsPort: 0, preauthTimeoutSeconds: 20 },
    // ORG mailboxes may have a secret: the brute-force scenario guesses one.
    auth: { passwordTypes: ['ORG'] },
    metrics: { enabled: false },
    admin: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
  };
  const file = path.join(root, 'soak-config.json');
  writeFileSync(file, JSON.stringify(config, null, 2), { mode: 0o600 });
  return file;
}

function portOf(listening: Record<string, unknown>, key: string): number {
  const value = listening[key];
  const port = typeof value === 'string' ? Number(value.slice(value.lastIndexOf(':') + 1)) : NaN;
  if (!Number.isInteger(port) || port <= 0) throw new Error(`gateway.ready lists no ${key} port`);
  return port;
}

/** How the gateway process is started: from the sources (tsx) or as production runs it. */
export interface GatewayLaunch {
  /** `dist`: the built `dist/main.js`, as `npm start` runs it (the caller builds it first). */
  readonly entry?: 'src' | 'dist';
  /** Extra Node options, e.g. `--cpu-prof`. */
  readonly nodeArgs?: readonly string[];
}

/** Starts the gateway and resolves once it logged `gateway.ready`. */
export function startSoakGateway(
  configFile: string,
  timeoutMs = 180_000,
  launch: GatewayLaunch = {},
): Promise<RunningGateway> {
  // Through a shell that raises the open-files limit first (root may raise the hard one too), then
  // becomes the gateway (exec: same pid, so kill -9 and /proc reach the gateway itself).
  const node = [
    process.execPath,
    ...(launch.nodeArgs ?? []),
    ...(launch.entry === 'dist' ? ['dist/main.js'] : ['--import', 'tsx', 'src/main.ts']),
  ];
  const raise = `ulimit -n ${GATEWAY_NOFILE} 2>/dev/null || ulimit -n $(ulimit -Hn) 2>/dev/null; exec "$@"`;
  const child = spawn('/bin/sh', ['-c', raise, 'sh', ...node], {
    cwd: repoRoot,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      MSSGW_CONFIG_DIR: path.join(repoRoot, 'nonexistent-config-dir'),
      MSSGW_CONFIG: configFile,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: false,
  });
  let expectedExit = false;
  let exitedFlag = false;
  let nonJson = 0;
  const tail: string[] = [];
  const exited = new Promise<void>((resolve) =>
    child.once('exit', () => {
      exitedFlag = true;
      resolve();
    }),
  );
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`gateway not ready within ${timeoutMs} ms:\n${tail.join('\n')}`));
    }, timeoutMs);
    void exited.then(() => {
      clearTimeout(timer);
      reject(new Error(`gateway exited before ready:\n${tail.join('\n')}`));
    });
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      createInterface({ input: stream }).on('line', (line) => {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        let event: Record<string, unknown>;
        try {
          event = JSON.parse(line) as Record<string, unknown>;
        } catch {
          nonJson += 1;
          return;
        }
        if (event.event !== 'gateway.ready') return;
        clearTimeout(timer);
        const listening = (event.listening ?? {}) as Record<string, unknown>;
        const pid = child.pid!;
        resolve({
          child,
          pid,
          ports: {
            mx: portOf(listening, 'mx'),
            submission: portOf(listening, 'submission'),
            submissionTls: portOf(listening, 'submissionTls'),
            imap: portOf(listening, 'imap'),
            imapTls: portOf(listening, 'imapTls'),
            admin: portOf(listening, 'admin'),
          },
          crashed: () => exitedFlag && !expectedExit,
          exited,
          nonJsonLines: () => nonJson,
          expectExit: () => (expectedExit = true),
        });
      });
    }
  });
}

/** Open file descriptors of a process (Linux /proc). */
/** SIGTERM, up to 60 s for the stop, then SIGKILL: the end of a harness run, crashed or not. */
export async function stopSoakGateway(gw: RunningGateway | undefined): Promise<void> {
  if (!gw || gw.crashed()) return;
  gw.expectExit();
  gw.child.kill('SIGTERM');
  await Promise.race([gw.exited, new Promise((r) => setTimeout(r, 60_000))]);
  if (gw.child.exitCode === null) gw.child.kill('SIGKILL');
}

export function fdCount(pid: number): number {
  try {
    return readdirSync(`/proc/${pid}/fd`).length;
  } catch {
    return -1;
  }
}

/** Resident set size of a process, MiB (Linux /proc). */
export function rssMiB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : -1;
  } catch {
    return -1;
  }
}

/** Adds the inodes of the sockets `pid` holds to `inodes`; false when the process is gone. */
export function addSocketInodes(pid: number, inodes: Set<string>): boolean {
  try {
    for (const fd of readdirSync(`/proc/${pid}/fd`)) {
      try {
        const m = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (m?.[1]) inodes.add(m[1]);
      } catch {
        // closed meanwhile
      }
    }
    return true;
  } catch {
    return false;
  }
}

/** Sockets of a process in CLOSE-WAIT or other states, from its fds and /proc/net/tcp. */
export function socketStates(pid: number): Record<string, number> {
  const inodes = new Set<string>();
  if (!addSocketInodes(pid, inodes)) return {};
  const names: Record<string, string> = {
    '01': 'ESTABLISHED',
    '06': 'TIME_WAIT',
    '08': 'CLOSE_WAIT',
    '0A': 'LISTEN',
  };
  const out: Record<string, number> = {};
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let lines: string[] = [];
    try {
      lines = readFileSync(table, 'utf8').split('\n').slice(1);
    } catch {
      continue;
    }
    for (const line of lines) {
      const cols = line.trim().split(/\s+/);
      if (cols.length < 10 || !inodes.has(cols[9]!)) continue;
      const state = names[cols[3]!] ?? `state_${cols[3]}`;
      out[state] = (out[state] ?? 0) + 1;
    }
  }
  return out;
}

/** Processes whose command line mentions `marker` (the soak's own folder): left-over children. */
export function processesMentioning(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmd.includes(marker)) pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}
