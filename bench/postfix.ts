import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';

/**
 * Private Postfix instances for the side-by-side benchmark (BENCHMARKS.md): the Debian package is
 * installed when missing, its system service stopped and disabled, and each instance runs from its
 * own folder (config, queue, data, log) on a loopback port, its `master` a child of this process so
 * that the CPU of every Postfix daemon, those that exit included, is read from /proc.
 */

const run = promisify(execFile);

export const POSTFIX_DAEMONS = '/usr/lib/postfix/sbin';

/** Installs Postfix with apt-get when it is missing; leaves no system instance running. */
export async function ensurePostfix(say: (line: string) => void): Promise<void> {
  if (existsSync(path.join(POSTFIX_DAEMONS, 'master')) && existsSync('/usr/sbin/postconf')) return;
  say('postfix: not installed, installing it with apt-get (non-interactive, "No configuration")');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  const debconf = 'postfix postfix/main_mailer_type select No configuration\n';
  await new Promise<void>((resolve, reject) => {
    const child = spawn('debconf-set-selections', [], { stdio: ['pipe', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`debconf-set-selections ${code}`)),
    );
    child.stdin.end(debconf);
  });
  await run('apt-get', ['install', '-y', '--no-install-recommends', 'postfix'], {
    env,
    maxBuffer: 64 * 1024 * 1024,
  }).catch(async () => {
    // A stale package list: refresh once, then try again.
    await run('apt-get', ['update'], { env, maxBuffer: 64 * 1024 * 1024 });
    await run('apt-get', ['install', '-y', '--no-install-recommends', 'postfix'], {
      env,
      maxBuffer: 64 * 1024 * 1024,
    });
  });
  await stopSystemPostfix();
}

/** The package may start the system instance (systemd or the init script): stop and disable it. */
async function stopSystemPostfix(): Promise<void> {
  await run('systemctl', ['disable', '--now', 'postfix.service']).catch(() => undefined);
  await run('postfix', ['stop']).catch(() => undefined); // no systemd in a container: the init script's
  await run('update-rc.d', ['postfix', 'disable']).catch(() => undefined);
}

export interface PostfixListener {
  /** The loopback port of its smtpd. */
  readonly port: number;
  /** Extra `-o name=value` settings of this smtpd only. */
  readonly options?: Readonly<Record<string, string>>;
}

export interface PostfixInstanceSpec {
  /** The instance's own folder: etc/, queue/, data/, maillog. */
  readonly dir: string;
  /** main.cf settings on top of the private paths. */
  readonly main: Readonly<Record<string, string>>;
  readonly listener: PostfixListener;
  /** Files written into etc/ (maps). */
  readonly files?: Readonly<Record<string, string>>;
}

export interface PostfixPaths {
  readonly configDir: string;
  readonly queueDir: string;
  readonly dataDir: string;
  readonly maillog: string;
}

export function postfixPaths(dir: string): PostfixPaths {
  return {
    configDir: path.join(dir, 'etc'),
    queueDir: path.join(dir, 'queue'),
    dataDir: path.join(dir, 'data'),
    maillog: path.join(dir, 'maillog'),
  };
}

/** main.cf: the instance's own paths, logging to its own file, then the spec's settings. */
export function renderMainCf(spec: PostfixInstanceSpec): string {
  const p = postfixPaths(spec.dir);
  const settings: Record<string, string> = {
    compatibility_level: '3.6',
    config_directory: p.configDir,
    queue_directory: p.queueDir,
    data_directory: p.dataDir,
    maillog_file: p.maillog,
    // postfix refuses a log file outside these prefixes (and says so only in that log).
    maillog_file_prefixes: spec.dir,
    mail_owner: 'postfix',
    setgid_group: 'postdrop',
    inet_interfaces: 'loopback-only',
    inet_protocols: 'ipv4',
    // A private instance: never the system's aliases, never local delivery.
    alias_maps: '',
    alias_database: '',
    mydestination: '',
    local_recipient_maps: '',
    mynetworks: '127.0.0.1/32',
    // Loopback names: no DNS in the path of a message.
    smtp_host_lookup: 'native',
    lmtp_host_lookup: 'native',
    disable_dns_lookups: 'yes',
    smtpd_banner: '$myhostname ESMTP',
    myhostname: 'postfix.bench.test',
    ...spec.main,
  };
  return `${Object.entries(settings)
    .map(([k, v]) => `${k} = ${v}`)
    .join('\n')}\n`;
}

/**
 * master.cf: the services a queue needs (no chroot, the private queue has no copy of /etc), one
 * smtpd on the spec's loopback port, and postlog for `maillog_file`.
 */
export function renderMasterCf(spec: PostfixInstanceSpec): string {
  const { port, options = {} } = spec.listener;
  const o = Object.entries(options).map(([k, v]) => `  -o ${k}=${v}`);
  return [
    `127.0.0.1:${port} inet n - n - - smtpd`,
    ...o,
    'pickup    unix  n       -       n       60      1       pickup',
    'cleanup   unix  n       -       n       -       0       cleanup',
    'qmgr      unix  n       -       n       300     1       qmgr',
    'tlsmgr    unix  -       -       n       1000?   1       tlsmgr',
    'rewrite   unix  -       -       n       -       -       trivial-rewrite',
    'bounce    unix  -       -       n       -       0       bounce',
    'defer     unix  -       -       n       -       0       bounce',
    'trace     unix  -       -       n       -       0       bounce',
    'verify    unix  -       -       n       -       1       verify',
    'flush     unix  n       -       n       1000?   0       flush',
    'proxymap  unix  -       -       n       -       -       proxymap',
    'proxywrite unix -       -       n       -       1       proxymap',
    'smtp      unix  -       -       n       -       -       smtp',
    'relay     unix  -       -       n       -       -       smtp',
    'showq     unix  n       -       n       -       -       showq',
    'error     unix  -       -       n       -       -       error',
    'retry     unix  -       -       n       -       -       error',
    'discard   unix  -       -       n       -       -       discard',
    'lmtp      unix  -       -       n       -       -       lmtp',
    'anvil     unix  -       -       n       -       1       anvil',
    'scache    unix  -       -       n       -       1       scache',
    'tlsproxy  unix  -       -       n       -       0       tlsproxy',
    'postlog   unix-dgram n  -       n       -       1       postlogd',
    '',
  ].join('\n');
}

/** A running private instance: its master is our child (stays in the foreground, `-d`). */
export interface PostfixInstance {
  readonly spec: PostfixInstanceSpec;
  readonly paths: PostfixPaths;
  readonly master: ChildProcess;
  stop(): Promise<void>;
}

/** Writes the instance's files, creates its queue (`postfix check`) and starts its master. */
export async function startPostfix(spec: PostfixInstanceSpec): Promise<PostfixInstance> {
  const paths = postfixPaths(spec.dir);
  for (const dir of [paths.configDir, paths.queueDir, paths.dataDir]) mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(paths.configDir, 'main.cf'), renderMainCf(spec));
  writeFileSync(path.join(paths.configDir, 'master.cf'), renderMasterCf(spec));
  for (const [name, text] of Object.entries(spec.files ?? {}))
    writeFileSync(path.join(paths.configDir, name), text);
  // Creates the queue folders with their owners and modes (postfix-script's create-missing).
  await run('postfix', ['-c', paths.configDir, 'set-permissions']).catch(() => undefined);
  await run('postfix', ['-c', paths.configDir, 'check']);
  const master = spawn(path.join(POSTFIX_DAEMONS, 'master'), ['-c', paths.configDir, '-d'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    // Its own process group: a Ctrl-C on the terminal reaches us, and we stop it in order.
    detached: true,
  });
  let stderr = '';
  master.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString('utf8')).slice(-4000)));
  const exited = new Promise<void>((resolve) => master.once('exit', () => resolve()));
  await waitForPort(spec.listener.port, exited, () => stderr);
  return {
    spec,
    paths,
    master,
    stop: async () => {
      if (master.exitCode !== null || master.signalCode !== null) return;
      master.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (master.exitCode === null && master.signalCode === null) master.kill('SIGKILL');
    },
  };
}

async function waitForPort(port: number, exited: Promise<void>, stderr: () => string): Promise<void> {
  const { connect } = await import('node:net');
  let gone = false;
  void exited.then(() => (gone = true));
  for (let i = 0; i < 600; i += 1) {
    if (gone) throw new Error(`postfix master exited: ${stderr()}`);
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`postfix did not listen on ${port}: ${stderr()}`);
}
