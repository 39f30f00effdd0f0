#!/usr/bin/env node
// Installs the Debian packages the embedded default and the test suite need (redis-server, Dovecot
// with IMAP and LMTP, openssl; prometheus and chromium for `npm test` only), when they are missing. As root it
// runs apt-get itself; otherwise it prints the one command to run. MSSGW_SKIP_SYSTEM_DEPS=1 skips the check (external Redis/Dovecot).
import { spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import path from 'node:path';

if (process.env.MSSGW_SKIP_SYSTEM_DEPS === '1') process.exit(0);

const needs = [
  { pkg: 'redis-server', ok: () => onPath('redis-server') },
  { pkg: 'dovecot-imapd', ok: () => onPath('dovecot') && existsSync('/usr/lib/dovecot/imap') },
  { pkg: 'dovecot-lmtpd', ok: () => existsSync('/usr/lib/dovecot/lmtp') },
  { pkg: 'openssl', ok: () => onPath('openssl') },
  // Only the test suite needs Prometheus (test/integration/prometheus.test.ts runs /usr/bin/prometheus
  // and promtool itself); `npm start` does not install it. Its Debian service is not used.
  ...(process.env.npm_lifecycle_event === 'pretest'
    ? [
        { pkg: 'prometheus', ok: () => existsSync('/usr/bin/prometheus') && existsSync('/usr/bin/promtool') },
        // The portal's browser tests (test/integration/portal-browser.test.ts) drive Debian's Chromium
        // with playwright-core: never a browser download.
        { pkg: 'chromium', ok: () => existsSync('/usr/bin/chromium') },
        // test/integration/redis-sentinel.test.ts runs a primary, a replica and three sentinels.
        { pkg: 'redis-sentinel', ok: () => onPath('redis-sentinel') },
      ]
    : []),
];

/** As `command -v`, without a shell per command: this check runs before every `npm start`. */
function onPath(cmd) {
  return (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(path.join(dir, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const missing = needs.filter((n) => !n.ok()).map((n) => n.pkg);
if (missing.length === 0) process.exit(0);

const command = `apt-get update && apt-get install -y --no-install-recommends ${missing.join(' ')}`;
if (process.platform !== 'linux' || typeof process.getuid !== 'function' || process.getuid() !== 0) {
  console.error(
    `mssgw needs these Debian packages: ${missing.join(', ')}.\nInstall them as root with:\n  ${command}`,
  );
  process.exit(1);
}
console.log(`mssgw: installing ${missing.join(', ')} with apt-get`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
for (const args of [
  ['update', '-qq'],
  ['install', '-y', '-qq', '--no-install-recommends', ...missing],
]) {
  const r = spawnSync('apt-get', args, { stdio: 'inherit', env });
  if (r.status !== 0) {
    console.error(
      `mssgw: 'apt-get ${args.join(' ')}' failed (exit ${r.status}); run it by hand:\n  ${command}`,
    );
    process.exit(1);
  }
}
// The gateway and the tests run their own Redis and Dovecot: the system services these packages
// start (where an init system runs them) would only hold ports and memory.
const SERVICES = {
  'redis-server': 'redis-server',
  'redis-sentinel': 'redis-sentinel',
  'dovecot-imapd': 'dovecot',
  prometheus: 'prometheus',
};
const systemd = existsSync('/run/systemd/system');
for (const pkg of missing) {
  const service = SERVICES[pkg];
  if (!service) continue;
  const steps = systemd
    ? [
        ['systemctl', ['stop', service]],
        ['systemctl', ['disable', service]],
      ]
    : [['service', [service, 'stop']]];
  for (const [cmd, args] of steps) spawnSync(cmd, args, { stdio: 'ignore', env });
}
const still = needs.filter((n) => !n.ok()).map((n) => n.pkg);
if (still.length > 0) {
  console.error(`mssgw: still missing after apt-get: ${still.join(', ')}`);
  process.exit(1);
}
