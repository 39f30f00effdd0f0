#!/usr/bin/env node
// Compiles src/ to dist/ with tsc and, on success only, writes dist/.build-stamp. With --if-stale
// (what `npm start` runs) it compiles only when a source is newer than that stamp, so a start after
// the install (whose `prepare` built dist/) costs a directory walk, not a 12-90 s compilation.
// Sources are src/**, the tsconfig files and package.json (its "type" and dependencies shape the output).
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, utimesSync, writeFileSync } from 'node:fs';
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
writeFileSync(stamp, `${began.toISOString()}\n`);
utimesSync(stamp, began, began);
