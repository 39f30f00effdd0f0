import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Every event of a data directory's audit journal, oldest first. */
export function journalEvents(dataDir: string): Array<Record<string, unknown>> {
  const dir = path.join(dataDir, 'journal');
  return (
    readdirSync(dir)
      .filter((f) => f.endsWith('.jsonl'))
      .sort()
      // Only lines ended by a newline are complete; the gateway may be writing the last one.
      .flatMap((f) => readFileSync(path.join(dir, f), 'utf8').split('\n').slice(0, -1))
      .map((line) => JSON.parse(line) as Record<string, unknown>)
  );
}
