import { open } from 'node:fs/promises';

/**
 * fsyncs of directories shared by concurrent callers (group commit, ARCHITECTURE.md §6): a caller
 * whose rename came while an fsync of that directory was running waits for the next one, which
 * every caller arriving meanwhile joins. So at most two fsyncs per directory are in progress or
 * waiting, however many transactions commit at once, and none is answered before its rename is
 * durable (the running fsync may have started before it).
 */
export class GroupFsync {
  readonly #groups = new Map<
    string,
    { running?: Promise<void> | undefined; next?: Promise<void> | undefined }
  >();

  /** Resolves once an fsync of `dir` that started after this call has completed. */
  sync(dir: string): Promise<void> {
    let g = this.#groups.get(dir);
    if (!g) this.#groups.set(dir, (g = {}));
    const group = g;
    const start = (): Promise<void> => {
      const run = fsyncDir(dir).finally(() => {
        if (group.running === run) group.running = undefined;
      });
      group.running = run;
      return run;
    };
    if (!group.running) return start();
    group.next ??= group.running
      .catch(() => undefined)
      .then(() => {
        group.next = undefined;
        return start();
      });
    return group.next;
  }
}

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
