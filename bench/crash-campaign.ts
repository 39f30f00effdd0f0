import { spawn } from 'node:child_process';
import path from 'node:path';

/**
 * `npm run bench -- crash [kills]`: the exactly-once campaign of issue #12 — the gateway killed with
 * SIGKILL at random instants under load, `kills` times (default 100), then every acknowledged
 * message must be in the mailbox exactly once. It is the kill loop of
 * `test/integration/crash-safety.test.ts` run longer, on the test set-up's real Redis and Dovecot.
 */
export async function runCrashCampaign(kills: number): Promise<{ ok: boolean; summary: string }> {
  const root = path.resolve(import.meta.dirname, '..');
  const child = spawn(
    process.execPath,
    [
      path.join(root, 'node_modules/vitest/vitest.mjs'),
      'run',
      'test/integration/crash-safety.test.ts',
      '-t',
      'over and over',
    ],
    { cwd: root, env: { ...process.env, CRASH_KILLS: String(kills) }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => {
    const text = chunk.toString('utf8');
    out += text;
    for (const line of text.split('\n')) if (line.startsWith('crash-campaign progress:')) console.log(line);
  });
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  const summary = /crash-campaign: (.*)/.exec(out)?.[1] ?? out.split('\n').slice(-40).join('\n');
  return { ok: code === 0, summary };
}
