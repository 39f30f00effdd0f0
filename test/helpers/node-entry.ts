import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const repoRoot = path.resolve(import.meta.dirname, '../..');

let built: boolean | undefined;

/** Entry points that scripts/build.mjs also bundles, and where the bundle is. */
const BUNDLED: Readonly<Record<string, string>> = { 'src/admin/cli-main.ts': 'dist/cli/cli-main.js' };

function mtimeOf(file: string): number {
  return existsSync(path.join(repoRoot, file)) ? statSync(path.join(repoRoot, file)).mtimeMs : -1;
}

/** Whether every module of src/ has a compiled copy in dist/ at least as recent as itself. */
function distIsCurrent(): boolean {
  const walk = (dir: string): boolean =>
    readdirSync(path.join(repoRoot, dir), { withFileTypes: true }).every((entry) => {
      const rel = path.join(dir, entry.name);
      if (entry.isDirectory()) return walk(rel);
      if (!entry.name.endsWith('.ts') || entry.name.endsWith('.d.ts')) return true;
      const source = statSync(path.join(repoRoot, rel)).mtimeMs;
      const out = path.join(repoRoot, 'dist', path.relative('src', rel).replace(/\.ts$/, '.js'));
      try {
        return statSync(out).mtimeMs >= source;
      } catch {
        return false; // never built
      }
    });
  return walk('src');
}

/**
 * Node arguments that run one of our entry points (`src/main.ts`, `src/admin/cli-main.ts`) as a real
 * process: the build in dist/ (what `npm start` and bin/mssgw.js run) when it is current, which
 * costs half the CPU of compiling the sources again in every process; the source through tsx when
 * a module was edited since the last build, so a test never runs stale code. The CLI's build is its
 * bundle (dist/cli/), what bin/mssgw.js runs. Decided once per test worker. Run with `cwd` at the
 * repository root.
 */
export function nodeEntry(sourceFile: string): string[] {
  built ??= distIsCurrent();
  if (!built) return ['--import', 'tsx', sourceFile];
  // The CLI runs from its bundle, as bin/mssgw.js runs it, when the build made one.
  const compiled = path.join('dist', path.relative('src', sourceFile).replace(/\.ts$/, '.js'));
  const bundled = BUNDLED[sourceFile];
  // tsc rewrites every output: a bundle older than its entry's compiled copy predates that build.
  if (bundled !== undefined && mtimeOf(bundled) >= mtimeOf(compiled)) return [bundled];
  return [compiled];
}
