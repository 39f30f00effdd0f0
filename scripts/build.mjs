#!/usr/bin/env node
// Compiles src/ to dist/ with tsc and, on success only, writes dist/.build-stamp. With --if-stale
// (what `npm start` runs) it compiles only when a source is newer than that stamp, so a start after
// the install (whose `prepare` built dist/) costs a directory walk, not a 12-90 s compilation.
// Sources are src/**, the tsconfig files and package.json (its "type" and dependencies shape the output).
// After tsc, the CLI is bundled (esbuild) into dist/cli/: one file per lazily loaded command instead
// of hundreds of modules resolved and compiled at every `mssgw` call (issue #16: ≤ 0.3 s a command).
import { spawnSync } from 'node:child_process';
import { readdirSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const stamp = path.join(root, 'dist', '.build-stamp');

function newestMtimeMs(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    // A directory's own mtime changes when a file in it is added, renamed or deleted.
    const own = statSync(full).mtimeMs;
    if (own > newest) newest = own;
    if (entry.isDirectory()) {
      const inner = newestMtimeMs(full);
      if (inner > newest) newest = inner;
    }
  }
  return newest;
}

function stale() {
  let built;
  try {
    built = statSync(stamp).mtimeMs;
  } catch {
    return 'no build stamp';
  }
  const inputs = ['tsconfig.json', 'tsconfig.build.json', 'package.json'].map(
    (f) => statSync(path.join(root, f)).mtimeMs,
  );
  const newest = Math.max(
    statSync(path.join(root, 'src')).mtimeMs,
    newestMtimeMs(path.join(root, 'src')),
    ...inputs,
  );
  return newest > built ? 'sources changed since the last build' : undefined;
}

if (process.argv.includes('--if-stale')) {
  const why = stale();
  if (why === undefined) process.exit(0);
  console.error(`mssgw: building dist/ (${why})`);
}

// The stamp carries the time the build began: a source saved during the compilation stays newer.
const began = new Date();
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
const r = spawnSync(process.execPath, [tsc, '-p', path.join(root, 'tsconfig.build.json')], {
  stdio: 'inherit',
});
if (r.status !== 0) {
  console.error(`mssgw: the build failed (tsc exit ${r.status ?? r.signal}); dist/ is not marked built`);
  process.exit(1);
}

// Packages that find files beside their own at run time (worker scripts, package.json, native
// add-ons) stay outside the bundle and load from node_modules as usual.
const CLI_EXTERNAL = ['bullmq', 'ioredis', 'pino', 'msgpackr'];
const cliOut = path.join(root, 'dist', 'cli');
rmSync(cliOut, { recursive: true, force: true });
try {
  const { build } = await import('esbuild');
  await build({
    entryPoints: [path.join(root, 'dist', 'admin', 'cli-main.js')],
    outdir: cliOut,
    bundle: true,
    splitting: true, // a command's module stays a chunk loaded only when that command runs
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: CLI_EXTERNAL,
    // CommonJS packages in an ES module bundle still call require() for Node's built-ins.
    banner: {
      js: "import { createRequire as __mssgwRequire } from 'node:module'; const require = __mssgwRequire(import.meta.url);",
    },
    logLevel: 'warning',
  });
} catch (err) {
  console.error(`mssgw: bundling the CLI failed (${err.message}); dist/ is not marked built`);
  process.exit(1);
}
writeFileSync(stamp, `${began.toISOString()}\n`);
utimesSync(stamp, began, began);
