import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import {
  dovecotInstanceName,
  dovecotPaths,
  renderDovecotConfig,
  ssha512,
  type DovecotAccounts,
} from '../../src/store/index.js';

const rootAccounts: DovecotAccounts = {
  mailUser: 'mail',
  mailGroup: 'mail',
  mailUid: 8,
  internalUser: 'dovecot',
  internalGroup: 'dovecot',
  loginUser: 'dovenull',
  chroot: true,
};

const dataDir = '/srv/mssgw/var';

function render(overrides: Partial<Parameters<typeof renderDovecotConfig>[0]> = {}): string {
  return renderDovecotConfig({
    dataDir,
    imapPort: 11143,
    masterUser: 'mssgw',
    accounts: rootAccounts,
    ...overrides,
  });
}

/** The body of the first `name {` block (nested blocks included), for assertions on one section. */
function block(config: string, name: string): string {
  const start = config.indexOf(`${name} {`);
  expect(start, `${name} block`).toBeGreaterThanOrEqual(0);
  let depth = 0;
  for (let i = config.indexOf('{', start); i < config.length; i++) {
    if (config[i] === '{') depth++;
    if (config[i] === '}' && --depth === 0) return config.slice(start, i + 1);
  }
  throw new Error(`unterminated block ${name}`);
}

describe('renderDovecotConfig', () => {
  const config = render();
  const lines = config.split('\n').map((l) => l.trim());

  it('listens for IMAP on loopback only, without an imaps listener', () => {
    expect(lines).toContain('listen = 127.0.0.1');
    const login = block(config, 'service imap-login');
    expect(block(login, 'inet_listener imap')).toMatch(/address = 127\.0\.0\.1\s+port = 11143/);
    expect(block(login, 'inet_listener imaps')).toContain('port = 0');
    expect(lines).toContain('ssl = no');
  });

  it('offers LMTP on a 0600 unix socket only', () => {
    const lmtp = block(config, 'service lmtp');
    expect(block(lmtp, 'unix_listener lmtp')).toContain('mode = 0600');
    expect(lmtp).not.toContain('inet_listener');
    expect(dovecotPaths(dataDir).lmtpSocket).toBe('/srv/mssgw/var/dovecot/run/lmtp');
  });

  it('authenticates only the master user; a direct login has an empty passdb', () => {
    const [master, regular] = config.split('passdb {').slice(1);
    expect(master).toMatch(
      /driver = passwd-file\s+args = \/srv\/mssgw\/var\/dovecot\/etc\/master\.passwd\s+master = yes/,
    );
    expect(regular).toMatch(/args = \/srv\/mssgw\/var\/dovecot\/etc\/no-direct-logins\.passwd\s+}/);
    expect(regular).not.toContain('master = yes');
    expect(lines).toContain('auth_master_user_separator = *');
    expect(lines).toContain('auth_username_format = %Lu');
    const chars = /^auth_username_chars = "(.*)"$/m.exec(config)?.[1] ?? '';
    for (const c of ['+', "'", '=', '.', '-', '_', '@']) expect(chars).toContain(c);
    expect(chars).not.toMatch(/[/*\s]/);
  });

  it('lets the registry decide which mailboxes exist, with mail owned by the mail user', () => {
    expect(block(config, 'userdb')).toContain(
      'args = uid=mail gid=mail home=/srv/mssgw/var/dovecot/mail/%d/%n allow_all_users=yes',
    );
    expect(lines).toContain('mail_location = maildir:~/Maildir');
    expect(lines).toEqual(
      expect.arrayContaining(['mail_uid = mail', 'first_valid_uid = 8', 'last_valid_uid = 8']),
    );
    expect(lines).toContain('recipient_delimiter =');
  });

  it('adds no header but Return-Path at delivery, and never slows the gateway down', () => {
    expect(lines).toEqual(
      expect.arrayContaining([
        'lmtp_add_received_header = no',
        'lmtp_hdr_delivery_address = none',
        'auth_failure_delay = 0',
      ]),
    );
    expect(block(block(config, 'service anvil'), 'unix_listener anvil-auth-penalty')).toContain('mode = 0');
  });

  it('creates and subscribes the special-use folders', () => {
    const ns = block(config, 'namespace inbox');
    expect(ns).toContain('inbox = yes');
    for (const [name, use] of [
      ['Drafts', '\\Drafts'],
      ['Sent', '\\Sent'],
      ['Trash', '\\Trash'],
      ['Junk', '\\Junk'],
    ]) {
      const folder = block(ns, `mailbox ${name}`);
      expect(folder).toContain('auto = subscribe');
      expect(folder).toContain(`special_use = ${use}`);
    }
  });

  it('keeps its runtime, state and logs under the data directory', () => {
    expect(lines).toEqual(
      expect.arrayContaining([
        'base_dir = /srv/mssgw/var/dovecot/run',
        'state_dir = /srv/mssgw/var/dovecot/state',
        'log_path = /srv/mssgw/var/dovecot/dovecot.log',
        `instance_name = ${dovecotInstanceName(dataDir)}`,
      ]),
    );
    expect(dovecotInstanceName(dataDir)).not.toBe(dovecotInstanceName('/srv/other'));
  });

  it('chroots login processes as root, and runs everything as the current user otherwise', () => {
    expect(config).not.toContain('chroot =');
    const rootless = render({
      accounts: {
        mailUser: 'dev',
        mailGroup: 'dev',
        mailUid: 1000,
        internalUser: 'dev',
        internalGroup: 'dev',
        loginUser: 'dev',
        chroot: false,
      },
    });
    expect(block(rootless, 'service imap-login')).toContain('chroot =');
    expect(block(rootless, 'service anvil')).toContain('chroot =');
    expect(rootless).toContain('default_login_user = dev');
    expect(rootless).toContain('first_valid_uid = 1000');
  });

  it('refuses values that would break the configuration', () => {
    expect(() => render({ dataDir: '/srv/my data' })).toThrow(/letters, digits/);
    expect(() => render({ dataDir: '/srv/100%' })).toThrow(/letters, digits/);
    expect(() => render({ dataDir: `/srv/${'d'.repeat(80)}` })).toThrow(/shorter MSSGW_DATA_DIR/);
    expect(() => render({ masterUser: 'mss*gw' })).toThrow(/store\.masterUser/);
    expect(() => render({ accounts: { ...rootAccounts, mailUser: 'mail user' } })).toThrow(/store\.mailUser/);
  });

  it('is accepted by doveconf', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'dovecot-conf-'));
    try {
      const file = path.join(dir, 'dovecot.conf');
      writeFileSync(
        file,
        renderDovecotConfig({ dataDir: dir, imapPort: 11143, masterUser: 'mssgw', accounts: rootAccounts }),
      );
      const { stdout } = await promisify(execFile)('doveconf', ['-n', '-c', file]);
      expect(stdout).toContain('allow_all_users=yes');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('ssha512', () => {
  it('is base64(sha512(password + salt) + salt)', () => {
    const salt = Buffer.from('0123456789abcdef');
    const hash = ssha512('s3cret', salt);
    expect(hash.startsWith('{SSHA512}')).toBe(true);
    const raw = Buffer.from(hash.slice('{SSHA512}'.length), 'base64');
    expect(raw.subarray(64).equals(salt)).toBe(true);
    const expected = createHash('sha512').update('s3cret').update(salt).digest();
    expect(raw.subarray(0, 64).equals(expected)).toBe(true);
  });

  it('salts every hash differently', () => {
    expect(ssha512('same')).not.toBe(ssha512('same'));
  });
});
