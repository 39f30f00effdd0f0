import { spawn } from 'node:child_process';
import { chmod, chown, mkdir, stat, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';
import type { Logger } from '../observability/index.js';
import type { DovecotAccounts, DovecotPaths } from './dovecot-config.js';

/** Accounts plus the numeric ids the gateway needs to set file ownership. */
export interface ResolvedAccounts extends DovecotAccounts {
  readonly mailGid: number;
  readonly internalUid: number;
  readonly internalGid: number;
}

interface PasswdEntry {
  readonly name: string;
  readonly uid: number;
  readonly gid: number;
}

/**
 * getent(1), in its own process group like the supervised children: a signal to the gateway's group
 * (a stop during start-up) must not kill the look-up and make a present user look missing. The
 * child joins its own group only just before exec, so a group signal can still land in between:
 * a look-up killed by a signal was interrupted, not answered, and is made again (twice at most).
 * Exit 2 is "no such entry"; anything else is a failed look-up, not an answer.
 */
async function getent(database: 'passwd' | 'group', key: string): Promise<string[] | undefined> {
  for (let attempt = 1; ; attempt++) {
    const result = await getentOnce(database, key);
    if (result.kind === 'answer') return result.fields;
    if (attempt >= 3 || result.error.details.signal === null) throw result.error;
  }
}

function getentOnce(
  database: 'passwd' | 'group',
  key: string,
): Promise<{ kind: 'answer'; fields: string[] | undefined } | { kind: 'failed'; error: GatewayError }> {
  return new Promise((resolve, reject) => {
    const child = spawn('getent', [database, key], { stdio: ['ignore', 'pipe', 'ignore'], detached: true });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.once('error', (err) =>
      reject(new GatewayError('DEPENDENCY_MISSING', 'getent cannot run', { key }, { cause: err })),
    );
    child.once('close', (code, signal) => {
      if (code === 0) resolve({ kind: 'answer', fields: stdout.trim().split(':') });
      else if (code === 2) resolve({ kind: 'answer', fields: undefined });
      else
        resolve({
          kind: 'failed',
          error: new GatewayError('DEPENDENCY_MISSING', `getent ${database} ${key} failed`, {
            key,
            code,
            signal,
          }),
        });
    });
  });
}

async function lookupUser(name: string, key: string): Promise<PasswdEntry> {
  const fields = await getent('passwd', name);
  if (!fields || fields.length < 4) {
    throw new GatewayError(
      'DEPENDENCY_MISSING',
      `system user "${name}" (${key}) does not exist; install the Debian packages dovecot-imapd and ` +
        'dovecot-lmtpd, which create the dovecot and dovenull users',
      { key, user: name },
    );
  }
  return { name, uid: Number(fields[2]), gid: Number(fields[3]) };
}

async function groupName(gid: number): Promise<string> {
  return (await getent('group', String(gid)))?.[0] ?? String(gid);
}

/**
 * Who Dovecot runs as. As root (the supported deployment): mail owned by `mailUser` (default
 * `mail`), Dovecot's internal processes as `dovecot`, pre-login as `dovenull`, login processes
 * chrooted. Not root: we adapt instead of failing, so that a developer can run the gateway
 * unprivileged: every account is the current user and chroot is off (Dovecot's rootless mode).
 */
export async function resolveDovecotAccounts(mailUser: string, logger: Logger): Promise<ResolvedAccounts> {
  if (process.getuid?.() !== 0) {
    const me = userInfo();
    const group = await groupName(me.gid);
    if (mailUser !== 'mail' && mailUser !== me.username) {
      logger.warn(
        { event: 'dovecot.rootless', mailUser, user: me.username },
        'not root: store.mailUser ignored',
      );
    }
    return {
      mailUser: me.username,
      mailGroup: group,
      mailUid: me.uid,
      mailGid: me.gid,
      internalUser: me.username,
      internalGroup: group,
      internalUid: me.uid,
      internalGid: me.gid,
      loginUser: me.username,
      chroot: false,
    };
  }
  const mail = await lookupUser(mailUser, 'store.mailUser');
  if (mail.uid === 0) {
    throw new GatewayError('CONFIG_INVALID', 'store.mailUser must not be root: Dovecot refuses uid 0', {
      key: 'store.mailUser',
    });
  }
  const internal = await lookupUser('dovecot', 'default_internal_user');
  await lookupUser('dovenull', 'default_login_user');
  return {
    mailUser: mail.name,
    mailGroup: await groupName(mail.gid),
    mailUid: mail.uid,
    mailGid: mail.gid,
    internalUser: internal.name,
    internalGroup: await groupName(internal.gid),
    internalUid: internal.uid,
    internalGid: internal.gid,
    loginUser: 'dovenull',
    chroot: true,
  };
}

function searchable(st: { uid: number; gid: number; mode: number }, uid: number, gid: number): boolean {
  if (st.uid === uid) return (st.mode & 0o100) !== 0;
  if (st.gid === gid) return (st.mode & 0o010) !== 0;
  return (st.mode & 0o001) !== 0;
}

/**
 * Dovecot's mail and auth processes open files under the data directory with their own uid, so
 * every directory above must be searchable by them. The data directory is ours and only gets the
 * search bit for others (no listing); a parent directory is not ours to change.
 */
async function ensureReachable(dataDir: string, accounts: ResolvedAccounts, logger: Logger): Promise<void> {
  const who = [
    { user: accounts.mailUser, uid: accounts.mailUid, gid: accounts.mailGid },
    { user: accounts.internalUser, uid: accounts.internalUid, gid: accounts.internalGid },
  ];
  const dirs: string[] = [];
  for (let dir = dataDir; ; dir = path.dirname(dir)) {
    dirs.unshift(dir);
    if (dir === path.dirname(dir)) break;
  }
  for (const dir of dirs) {
    const st = await stat(dir);
    const blocked = who.find((w) => !searchable(st, w.uid, w.gid));
    if (!blocked) continue;
    if (dir === dataDir) {
      await chmod(dir, (st.mode & 0o7777) | 0o001);
      logger.info({ event: 'dovecot.datadir.chmod', dir }, 'made the data directory searchable for Dovecot');
      continue;
    }
    throw new GatewayError(
      'CONFIG_INVALID',
      `Dovecot's user ${blocked.user} cannot reach the data directory: ${dir} is not searchable by it ` +
        `(mode ${(st.mode & 0o777).toString(8)}); allow it (chmod o+x) or choose another dataDir`,
      { key: 'dataDir', dir },
    );
  }
}

/**
 * Creates the store's folders and the passwd files with the ownership Dovecot needs: the mail
 * folder belongs to the mail user, the passwd files are readable by Dovecot's auth process (it runs
 * as the internal user) and nobody else.
 */
export async function prepareDovecotFiles(
  paths: DovecotPaths,
  accounts: ResolvedAccounts,
  files: { readonly masterPasswd: string; readonly config: string },
  logger: Logger,
): Promise<void> {
  const dataDir = path.dirname(paths.root);
  const asRoot = accounts.chroot;
  // Folders created on the way stay searchable (not listable) for the users Dovecot switches to.
  await mkdir(dataDir, { recursive: true, mode: 0o711 });
  if (asRoot) await ensureReachable(dataDir, accounts, logger);
  await mkdir(paths.root, { recursive: true });
  await chmod(paths.root, 0o711);
  await mkdir(paths.etcDir, { recursive: true });
  await chmod(paths.etcDir, 0o750);
  await mkdir(paths.stateDir, { recursive: true, mode: 0o750 });
  await mkdir(paths.mailDir, { recursive: true });
  await chmod(paths.mailDir, 0o700);
  await writeFile(paths.masterPasswdFile, files.masterPasswd, { mode: 0o640 });
  await writeFile(paths.noDirectLoginsFile, '', { mode: 0o640 });
  await chmod(paths.masterPasswdFile, 0o640);
  await writeFile(paths.configFile, files.config, { mode: 0o644 });
  if (asRoot) {
    await chown(paths.etcDir, 0, accounts.internalGid);
    await chown(paths.masterPasswdFile, 0, accounts.internalGid);
    await chown(paths.noDirectLoginsFile, 0, accounts.internalGid);
    await chown(paths.mailDir, accounts.mailUid, accounts.mailGid);
  }
}
