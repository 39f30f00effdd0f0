#!/usr/bin/env node
// The `mssgw` command: runs the built CLI (src/admin/cli-main.ts compiled and bundled into dist/cli/ by
// `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/cli/cli-main.js', import.meta.url);
const entryPath = fileURLToPath(entry);

if (!existsSync(entryPath)) {
  const root = fileURLToPath(new URL('..', import.meta.url));
  console.error(
    `mssgw is not built: ${entryPath} is missing.\nRun "npm run build" in ${root}, then try again.`,
  );
  process.exit(1);
}

await import(entry.href);
