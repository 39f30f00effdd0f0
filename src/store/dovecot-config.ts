import { createHash, randomBytes } from 'node:crypto';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';

/** Where the embedded Dovecot keeps its files, all under `<dataDir>/dovecot` (and the secret). */
export interface DovecotPaths {
  readonly root: string;
  readonly configFile: string;
  readonly etcDir: string;
  /** passwd-file of the master user (the only identity Dovecot authenticates). */
  readonly masterPasswdFile: string;
  /** The regular passdb: an empty file, so no mailbox can be opened directly. */
  readonly noDirectLoginsFile: string;
  readonly baseDir: string;
  readonly stateDir: string;
  readonly mailDir: string;
  readonly logFile: string;
  /** stdout/stderr of the master process (start-up errors also land here). */
  readonly outputFile: string;
  readonly lmtpSocket: string;
  readonly pidFile: string;
  readonly secretsDir: string;
  readonly secretFile: string;
}

/** System accounts Dovecot runs as. */
export interface DovecotAccounts {
  /** Owner of the mail (Dovecot refuses uid 0 for mail access). */
  readonly mailUser: string;
  readonly mailGroup: string;
  readonly mailUid: number;
  /** Unprivileged account of Dovecot's own processes (auth, anvil, stats). */
  readonly internalUser: string;
  readonly internalGroup: string;
  /** Account of the pre-login processes (imap-login). */
  readonly loginUser: string;
  /** Whether login processes are chrooted; chroot needs root, so false when we are not root. */
  readonly chroot: boolean;
}

export interface DovecotConfigOptions {
  /** Absolute path of the gateway's data directory. */
  readonly dataDir: string;
  readonly imapPort: number;
  readonly masterUser: string;
  readonly accounts: DovecotAccounts;
}

/** The special-use folders every mailbox gets (RFC 6154), auto-created and subscribed. */
export const SPECIAL_USE_FOLDERS = [
  { name: 'Drafts', specialUse: '\\Drafts' },
  { name: 'Sent', specialUse: '\\Sent' },
  { name: 'Trash', specialUse: '\\Trash' },
  { name: 'Junk', specialUse: '\\Junk' },
] as const;

/**
 * Longest socket name Dovecot creates in base_dir. Unix socket paths must fit sockaddr_un (108
 * bytes); Dovecot fails to start, or binds a truncated path, when base_dir is too long.
 */
/**
 * Characters Dovecot accepts in a mailbox name: those of an unquoted local part (RFC 5321 atext)
 * that the registry allows, except '/' (the local part is a directory name in the mail home) and
 * '*' (the master user separator). Dovecot's default refuses '+', '\'' and others that are valid
 * in an address.
 */
const USERNAME_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@!#$%&'+=?^`{|}~";

const LONGEST_DOVECOT_SOCKET = 'imap-urlauth-worker';
const MAX_SOCKET_PATH_BYTES = 100;

export function dovecotPaths(dataDir: string): DovecotPaths {
  const data = path.resolve(dataDir);
  const root = path.join(data, 'dovecot');
  const baseDir = path.join(root, 'run');
  const etcDir = path.join(root, 'etc');
  const secretsDir = path.join(data, 'secrets');
  return {
    root,
    configFile: path.join(root, 'dovecot.conf'),
    etcDir,
    masterPasswdFile: path.join(etcDir, 'master.passwd'),
    noDirectLoginsFile: path.join(etcDir, 'no-direct-logins.passwd'),
    baseDir,
    stateDir: path.join(root, 'state'),
    mailDir: path.join(root, 'mail'),
    logFile: path.join(root, 'dovecot.log'),
    outputFile: path.join(root, 'dovecot.stderr.log'),
    lmtpSocket: path.join(baseDir, 'lmtp'),
    pidFile: path.join(baseDir, 'master.pid'),
    secretsDir,
    secretFile: path.join(secretsDir, 'dovecot-master.secret'),
  };
}

/**
 * Dovecot's instance name: it prefixes the titles of all its processes (`dovecot-<name>/imap`),
 * which is how the processes of one data directory are told apart from any other Dovecot.
 */
export function dovecotInstanceName(dataDir: string): string {
  return `mssgw-${createHash('sha256').update(path.resolve(dataDir)).digest('hex').slice(0, 10)}`;
}

/** `{SSHA512}` scheme: base64(sha512(password + salt) + salt), as Dovecot's passwd-file reads it. */
export function ssha512(password: string, salt: Buffer = randomBytes(16)): string {
  const digest = createHash('sha512')
    .update(Buffer.concat([Buffer.from(password, 'utf8'), salt]))
    .digest();
  return `{SSHA512}${Buffer.concat([digest, salt]).toString('base64')}`;
}

/** The master user's passwd-file line. */
export function renderMasterPasswd(masterUser: string, password: string): string {
  assertToken(masterUser, 'store.masterUser');
  return `${masterUser}:${ssha512(password)}\n`;
}

function assertToken(value: string, key: string): void {
  // User names end up in passwd-file lines and in userdb args (space separated, ':' separated).
  if (!/^[A-Za-z0-9._-]+$/.test(value)) {
    throw new GatewayError('CONFIG_INVALID', `${key} must be letters, digits, '.', '_' or '-'`, { key });
  }
}

/**
 * Paths are written unquoted into the Dovecot config and the userdb args, where a space separates
 * arguments and '%' starts a variable: refuse anything that is not plain.
 */
export function assertDovecotDataDir(dataDir: string): void {
  const root = path.resolve(dataDir);
  if (!/^\/[A-Za-z0-9._/-]*$/.test(root)) {
    throw new GatewayError(
      'CONFIG_INVALID',
      `data directory ${root} must contain only letters, digits, '.', '_', '-' and '/' for the embedded Dovecot`,
      { key: 'dataDir' },
    );
  }
  const longest = path.join(dovecotPaths(root).baseDir, LONGEST_DOVECOT_SOCKET);
  if (Buffer.byteLength(longest) > MAX_SOCKET_PATH_BYTES) {
    throw new GatewayError(
      'CONFIG_INVALID',
      `Dovecot socket paths under ${root} would exceed ${MAX_SOCKET_PATH_BYTES} bytes: ` +
        'choose a shorter MSSGW_DATA_DIR (dataDir)',
      { key: 'dataDir', socketPath: longest },
    );
  }
}

function renderNamespace(): string[] {
  const lines = ['namespace inbox {', '  inbox = yes'];
  for (const folder of SPECIAL_USE_FOLDERS) {
    lines.push(
      `  mailbox ${folder.name} {`,
      '    auto = subscribe',
      `    special_use = ${folder.specialUse}`,
      '  }',
    );
  }
  lines.push('}');
  return lines;
}

function renderServices(imapPort: number, chroot: boolean): string[] {
  // Without root, chroot() is impossible: the login and anvil processes run unconfined.
  const noChroot = chroot ? [] : ['  chroot ='];
  return [
    'service imap-login {',
    ...noChroot,
    '  inet_listener imap {',
    '    address = 127.0.0.1',
    `    port = ${imapPort}`,
    '  }',
    // The gateway terminates TLS; the store is reached on loopback only, so no imaps listener.
    '  inet_listener imaps {',
    '    port = 0',
    '  }',
    '}',
    // Dovecot's brute-force penalty counts failures per client IP, and every login comes from the
    // gateway's address: one failure would delay every user's login by up to 15 s (even from
    // login_trusted_networks, tried on 2.3.19). The gateway throttles its own clients instead.
    // Documented way to turn it off; auth then logs one "anvil-auth-penalty" error at start.
    'service anvil {',
    ...noChroot,
    '  unix_listener anvil-auth-penalty {',
    '    mode = 0',
    '  }',
    '}',
    // LMTP only on a unix socket that only our user may open (no inet listener at all).
    'service lmtp {',
    '  unix_listener lmtp {',
    '    mode = 0600',
    '  }',
    '}',
  ];
}

/**
 * The embedded store's Dovecot 2.3 configuration (shared/examples/dovecot-store.conf). Pure: every
 * account, path and port comes from the options. Dovecot never sees a user's credential: the
 * gateway logs in as the target mailbox through the master user, and mailbox existence is the
 * registry's decision (allow_all_users).
 */
export function renderDovecotConfig(options: DovecotConfigOptions): string {
  assertDovecotDataDir(options.dataDir);
  const { accounts: a } = options;
  for (const [key, value] of Object.entries({
    'store.masterUser': options.masterUser,
    'store.mailUser': a.mailUser,
    mailGroup: a.mailGroup,
    internalUser: a.internalUser,
    internalGroup: a.internalGroup,
    loginUser: a.loginUser,
  })) {
    assertToken(value, key);
  }
  const p = dovecotPaths(options.dataDir);
  return [
    '# Written by the gateway at every start (embedded mode); edits are overwritten.',
    'protocols = imap lmtp',
    `instance_name = ${dovecotInstanceName(options.dataDir)}`,
    `base_dir = ${p.baseDir}`,
    `state_dir = ${p.stateDir}`,
    'listen = 127.0.0.1',
    'ssl = no',
    // Loopback only and the gateway is the only client; TLS is the gateway's job.
    'disable_plaintext_auth = no',
    'auth_mechanisms = plain',
    // Only the gateway logs in, with the master password: a failure is a misconfiguration to report
    // at once, not a guess to slow down.
    'auth_failure_delay = 0',
    `log_path = ${p.logFile}`,
    `default_internal_user = ${a.internalUser}`,
    `default_internal_group = ${a.internalGroup}`,
    `default_login_user = ${a.loginUser}`,
    `mail_uid = ${a.mailUser}`,
    `mail_gid = ${a.mailGroup}`,
    `first_valid_uid = ${a.mailUid}`,
    `last_valid_uid = ${a.mailUid}`,
    'mail_location = maildir:~/Maildir',
    // "250 OK" means durable (ARCHITECTURE.md §6): LMTP replies only after the mail is fsynced.
    'mail_fsync = optimized',
    'auth_username_format = %Lu',
    `auth_username_chars = "${USERNAME_CHARS}"`,
    'auth_master_user_separator = *',
    // We deliver exact addresses: "a+b@x" is a mailbox of its own, not a detail of "a@x".
    'recipient_delimiter =',
    // The LMTP hop is internal; the gateway's SMTP front end writes the trace fields that matter.
    // Without these Dovecot adds only Return-Path (RFC 5321 §4.4), the same for one recipient or
    // many (Delivered-To would otherwise appear only in single-recipient transactions).
    'lmtp_add_received_header = no',
    'lmtp_hdr_delivery_address = none',
    'passdb {',
    '  driver = passwd-file',
    `  args = ${p.masterPasswdFile}`,
    '  master = yes',
    '}',
    // The only regular passdb is empty: a direct login to a mailbox always fails.
    'passdb {',
    '  driver = passwd-file',
    `  args = ${p.noDirectLoginsFile}`,
    '}',
    'userdb {',
    '  driver = static',
    `  args = uid=${a.mailUser} gid=${a.mailGroup} home=${p.mailDir}/%d/%n allow_all_users=yes`,
    '}',
    ...renderNamespace(),
    ...renderServices(options.imapPort, a.chroot),
    '',
  ].join('\n');
}
