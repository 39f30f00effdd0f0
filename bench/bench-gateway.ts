import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { type Config, loadConfig } from '../src/config/index.js';
import { devPkiSettings } from '../src/pki/index.js';

const ROOT = path.resolve(import.meta.dirname, '..');

/**
 * Benchmarks measure the product as production runs it, `dist/` (`npm start`, bin/mssgw.js), not
 * under tsx: dist/ is built first when a source is newer than its last build, as `npm start` does.
 */
export function buildDistIfStale(): void {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts', 'build.mjs'), '--if-stale'], {
    cwd: ROOT,
    stdio: 'inherit',
  });
  if (r.status !== 0) throw new Error(`the build of dist/ failed (exit ${r.status ?? r.signal})`);
}

/** A scratch folder for one benchmark run, its own dev PKI under `pki/` and data under `var/`. */
export function benchRoot(name: string): string {
  const root = mkdtempSync(path.join(tmpdir(), `mssgw-bench-${name}-`));
  // mkdtemp makes it 0700; Dovecot's mail user must traverse it (search only, no listing).
  chmodSync(root, 0o711);
  return root;
}

/**
 * The embedded default under `root`, silent, with IMAP, metrics and the admin API off; `sections`
 * replace whole top-level sections (smtp, relay…).
 */
export function benchConfig(root: string, sections: Record<string, unknown>): Config {
  return loadConfig({
    configDir: '/nonexistent',
    env: {},
    overrides: {
      dataDir: path.join(root, 'var'),
      ...devPkiSettings(path.join(root, 'pki')),
      imap: { enabled: false },
      metrics: { enabled: false },
      admin: { enabled: false },
      log: { level: 'silent' },
      ...sections,
    },
  });
}
