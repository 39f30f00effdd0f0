import { type FileHandle, open } from 'node:fs/promises';

/**
 * fsyncs of directories shared by concurrent callers (group commit, ARCHITECTURE.md §6): a caller
 * whose rename came while an fsync of that directory was running waits for the next one, which
 * every caller arriving meanwhile joins. So at most two fsyncs per directory are in progress or
 * waiting, however many transactions commit at once, and none is answered before its rename is
 * durable (the running fsync may have started before it).
 *
 * Each directory is opened once and its descriptor kept for the next fsyncs (an fsync makes durable
 * what the directory holds when it runs, whenever it was opened): a commit costs the fsync alone,
 * not an open and a close around it. A descriptor whose fsync failed is closed and opened anew; the
 * others live as long as the process (one per spool directory).
 */
export class GroupFsync {
  readonly #groups = new Map<
    string,
    {
      running?: Promise<void> | undefined;
      next?: Promise<void> | undefined;
      handle?: Promise<FileHandle> | undefined;
    }
  >();

  /** Resolves once an fsync of `dir` that started after this call has completed. */
  sync(dir: string): Promise<void> {
    let g = this.#groups.get(dir);
    if (!g) this.#groups.set(dir, (g = {}));
    const group = g;
    const fsync = async (): Promise<void> => {
      group.handle ??= open(dir, 'r');
      const handle = group.handle;
      try {
        await (await handle).sync();
      } catch (err) {
        if (group.handle === handle) group.handle = undefined;
        await handle.then((fh) => fh.close()).catch(() => undefined);
        throw err;
      }
    };
    const start = (): Promise<void> => {
      const run = fsync().finally(() => {
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
