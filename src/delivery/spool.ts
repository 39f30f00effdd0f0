import { randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, type ReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../errors/index.js';
import type { DestinationState, SpoolEnvelope } from './spool-entry.js';

/** Uncommitted files younger than this may belong to a transaction in progress (of any node). */
const DEFAULT_GRACE_MS = 10 * 60_000;

/**
 * The durable spool (ARCHITECTURE.md §6): a message is acknowledged only once it is here.
 *
 * Layout under `<dataDir>/spool`: `tmp/` (being written), `queue/` (committed: `<id>.eml` and
 * `<id>.json`), `state/` (per destination: `<id>~<destination>.json`, the outcome of each recipient,
 * written before the queue is told), `failed/` (kept for the operator after a permanent failure).
 * After commit the envelope never changes; progress lives in the state files, one writer each (the
 * queue job of that destination), so destinations worked in parallel never overwrite each other.
 *
 * Commit protocol, safe against kill -9 at any instant: write and fsync both files in `tmp/`, rename
 * the message into `queue/`, then the envelope, then fsync `queue/`. The envelope in `queue/` is the
 * commit marker: a message without its envelope was never acknowledged and is removed by the sweep.
 */
export class Spool {
  readonly root: string;
  readonly #tmp: string;
  readonly #queue: string;
  readonly #failed: string;
  readonly #state: string;
  /**
   * Entries this process committed and has not yet handed to the store: no earlier attempt can
   * exist for them, so their first local attempt needs no check of the store (see takeFresh).
   */
  readonly #fresh = new Set<string>();
  /** Envelopes committed by this process and still queued: never read back from disk. */
  readonly #envelopes = new Map<string, SpoolEnvelope>();
  /**
   * State files known to exist (written or read here). An entry committed here has no state file
   * until one is written: reading or removing one then would only fail (ENOENT).
   */
  readonly #statesOnDisk = new Set<string>();
  /** Entries committed by this process (so their state files are all known to #statesOnDisk). */
  readonly #committedHere = new Set<string>();
  /** Directory fsyncs in progress and waiting, shared by concurrent commits (group commit). */
  readonly #dirSyncs = new Map<
    string,
    { running?: Promise<void> | undefined; next?: Promise<void> | undefined }
  >();

  constructor(dataDir: string, root = path.join(dataDir, 'spool')) {
    this.root = root;
    this.#tmp = path.join(this.root, 'tmp');
    this.#queue = path.join(this.root, 'queue');
    this.#failed = path.join(this.root, 'failed');
    this.#state = path.join(this.root, 'state');
  }

  async init(): Promise<void> {
    for (const d of [this.#tmp, this.#queue, this.#failed, this.#state])
      await mkdir(d, { recursive: true, mode: 0o700 });
  }

  /** Sortable, unique id: time then randomness. */
  newId(now: Date): string {
    return `${now.getTime().toString(36).padStart(9, '0')}${randomBytes(6).toString('hex')}`;
  }

  messagePath(id: string): string {
    return path.join(this.#queue, `${id}.eml`);
  }

  /**
   * Streams `prefix` then `body` into a temporary file and fsyncs it. Returns the byte count.
   * Call `commit` to make it part of the queue, or `discard` to drop it.
   *
   * `signal` aborts the write (the client went away during DATA): the body may then never end nor
   * fail, so without it the write would wait forever holding its descriptor. On abort, as on any
   * failure, the descriptor is closed and the temporary file removed before this rejects.
   */
  async writeMessage(id: string, prefix: Buffer, body: Readable): Promise<number> {
    const file = path.join(this.#tmp, `${id}.eml`);
    const out = createWriteStream(file, { flags: 'wx', mode: 0o600 });
    let bytes = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        out.once('error', reject);
        out.write(prefix, (err) => (err ? reject(err) : resolve()));
      });
      bytes += prefix.length;
      body.on('data', (chunk: Buffer) => (bytes += chunk.length));
      // A body that fails (the client went away mid-DATA: smtp/spool-incoming.ts destroys it) ends
      // the pipeline at once, and the file goes below.
      await pipeline(body, out);
      await fsyncFile(file);
      return bytes;
    } catch (err) {
      body.destroy();
      out.destroy();
      await rm(file, { force: true });
      throw new GatewayError(
        'SPOOL_FAILED',
        `cannot write spool file: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
  }

  /**
   * Puts a header line on top of a message still in `tmp/` (a submission's added `Sender:`): copies it
   * behind the new line, fsyncs, and renames over the original. Returns the new size.
   */
  async prependToUncommitted(id: string, header: Buffer): Promise<number> {
    const file = path.join(this.#tmp, `${id}.eml`);
    const next = path.join(this.#tmp, `${id}.eml.next`);
    try {
      const out = createWriteStream(next, { flags: 'wx', mode: 0o600 });
      out.write(header);
      await pipeline(createReadStream(file), out);
      await fsyncFile(next);
      await rename(next, file);
      return (await stat(file)).size;
    } catch (err) {
      await rm(next, { force: true });
      throw new GatewayError(
        'SPOOL_FAILED',
        `cannot rewrite spool file: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
  }

  async commit(envelope: SpoolEnvelope): Promise<void> {
    const { id } = envelope;
    try {
      await writeFileDurably(path.join(this.#tmp, `${id}.json`), JSON.stringify(envelope));
      await rename(path.join(this.#tmp, `${id}.eml`), path.join(this.#queue, `${id}.eml`));
      await rename(path.join(this.#tmp, `${id}.json`), path.join(this.#queue, `${id}.json`));
      await this.#syncDir(this.#queue);
      if (envelope.recipients.some((r) => (r.route ?? 'local') === 'local')) this.#fresh.add(id);
      this.#committedHere.add(id);
      if (this.#envelopes.size < ENVELOPE_CACHE_LIMIT) this.#envelopes.set(id, envelope);
    } catch (err) {
      await this.discard(id);
      throw new GatewayError(
        'SPOOL_FAILED',
        `cannot commit spool entry: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
  }

  /**
   * True once for an entry committed by this process and never attempted locally since: the caller
   * is about to make its first attempt. False for everything else (recovered after a restart, or
   * attempted before), whose earlier attempt may have reached the store unrecorded.
   */
  takeFresh(id: string): boolean {
    return this.#fresh.delete(id);
  }

  /**
   * Marks an entry still queued here as having no attempt that may have reached the store unseen:
   * this process's own last attempt got a definite answer (or none could be sent).
   */
  markFresh(id: string): void {
    if (this.#committedHere.has(id)) this.#fresh.add(id);
  }

  async discard(id: string): Promise<void> {
    await Promise.all(
      [`${id}.eml`, `${id}.json`].flatMap((f) => [
        rm(path.join(this.#tmp, f), { force: true }),
        rm(path.join(this.#queue, f), { force: true }),
      ]),
    );
  }

  /** The committed envelope, or undefined when the entry is gone (finished, or never committed). */
  async readEnvelope(id: string): Promise<SpoolEnvelope | undefined> {
    const known = this.#envelopes.get(id);
    if (known) return known;
    const text = await readFile(path.join(this.#queue, `${id}.json`), 'utf8').catch(ignoreMissing);
    return text === undefined ? undefined : (JSON.parse(text) as SpoolEnvelope);
  }

  /** Committed entries and the age of the oldest (its id starts with its time, see newId). */
  async stats(now: Date): Promise<{ messages: number; oldestAgeSeconds: number }> {
    const ids = await this.committedIds();
    const first = ids[0];
    if (first === undefined) return { messages: 0, oldestAgeSeconds: 0 };
    const at = parseInt(first.slice(0, 9), 36);
    return { messages: ids.length, oldestAgeSeconds: Math.max(0, (now.getTime() - at) / 1000) };
  }

  /** Ids of every committed entry, oldest first. */
  async committedIds(): Promise<string[]> {
    const names = await readdir(this.#queue);
    return names
      .filter((n) => n.endsWith('.json'))
      .map((n) => n.slice(0, -5))
      .sort();
  }

  #statePath(id: string, destination: string): string {
    return path.join(this.#state, `${id}~${destination}.json`);
  }

  async readState(id: string, destination: string): Promise<DestinationState | undefined> {
    const key = `${id}~${destination}`;
    if (this.#committedHere.has(id) && !this.#statesOnDisk.has(key)) return undefined;
    const text = await readFile(this.#statePath(id, destination), 'utf8').catch(ignoreMissing);
    if (text === undefined) return undefined;
    this.#statesOnDisk.add(key);
    return JSON.parse(text) as DestinationState;
  }

  /** Writes a destination's state durably (fsync, rename, directory fsync) before anyone is told. */
  async writeState(state: DestinationState): Promise<void> {
    const target = this.#statePath(state.spoolId, state.destination);
    const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
    await writeFileDurably(tmp, JSON.stringify(state));
    await rename(tmp, target);
    await this.#syncDir(this.#state);
    this.#statesOnDisk.add(`${state.spoolId}~${state.destination}`);
  }

  /**
   * fsync of a directory, shared by concurrent callers (group commit): a caller whose rename came
   * while an fsync was running waits for the next one, which every caller arriving meanwhile joins.
   */
  #syncDir(dir: string): Promise<void> {
    let g = this.#dirSyncs.get(dir);
    if (!g) this.#dirSyncs.set(dir, (g = {}));
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

  /**
   * Removes a finished entry: envelope first, so a crash in between leaves an orphan the sweep
   * removes. `durable` (when a destination is another operator) fsyncs the removal; without it a
   * power loss may bring back an entry already delivered into our store, which the next attempt
   * finds there (exactly once, §6) rather than delivering again, so the fsync is saved.
   */
  async remove(id: string, destinations: readonly string[], durable = true): Promise<void> {
    this.#fresh.delete(id);
    this.#envelopes.delete(id);
    await rm(path.join(this.#queue, `${id}.json`), { force: true });
    await rm(path.join(this.#queue, `${id}.eml`), { force: true });
    if (durable) await this.#syncDir(this.#queue);
    await this.#removeStates(id, destinations);
  }

  async #removeStates(id: string, destinations: readonly string[]): Promise<void> {
    await Promise.all(
      destinations.map((d) => {
        const key = `${id}~${d}`;
        // Committed here and never given a state file: nothing to remove (no failing unlink).
        const none = this.#committedHere.has(id) && !this.#statesOnDisk.has(key);
        this.#statesOnDisk.delete(key);
        return none ? Promise.resolve() : rm(this.#statePath(id, d), { force: true });
      }),
    );
    this.#committedHere.delete(id);
  }

  /**
   * Moves an entry with permanently failed recipients to `failed/`, where the operator can inspect
   * it, with the final state of every destination. Safe to repeat (a second caller finds it gone).
   */
  async moveToFailed(envelope: SpoolEnvelope, states: readonly DestinationState[]): Promise<void> {
    const { id } = envelope;
    this.#fresh.delete(id);
    this.#envelopes.delete(id);
    await writeFileDurably(path.join(this.#failed, `${id}.json`), JSON.stringify({ envelope, states }));
    try {
      await rename(path.join(this.#queue, `${id}.eml`), path.join(this.#failed, `${id}.eml`));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    await rm(path.join(this.#queue, `${id}.json`), { force: true });
    await this.#syncDir(this.#failed);
    await this.#syncDir(this.#queue);
    await this.#removeStates(
      id,
      states.map((st) => st.destination),
    );
  }

  openMessage(id: string): ReadStream {
    return createReadStream(this.messagePath(id));
  }

  async readMessage(id: string): Promise<Buffer> {
    return readFile(this.messagePath(id));
  }

  /**
   * At start, before anything is written (the spool belongs to this node alone, so no transaction
   * of another process can be in progress): removes every temporary file a killed process left —
   * everything in `tmp/` (messages and envelopes never committed, a submission's `.next` copy) and
   * the `.tmp` files of interrupted state writes — and state files of entries no longer committed
   * (a removal cut short). None is referred to by a committed entry. Returns how many went.
   */
  async sweepAtStart(): Promise<{ removedTemporary: number }> {
    let removedTemporary = 0;
    for (const f of await readdir(this.#tmp)) {
      await rm(path.join(this.#tmp, f), { force: true });
      removedTemporary += 1;
    }
    const committed = new Set(
      (await readdir(this.#queue)).filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)),
    );
    for (const f of await readdir(this.#state)) {
      const id = f.slice(0, f.indexOf('~'));
      if (f.endsWith('.json') && committed.has(id)) continue;
      await rm(path.join(this.#state, f), { force: true });
      removedTemporary += 1;
    }
    return { removedTemporary };
  }

  /**
   * Removes what was never committed: files in `tmp/` and messages without an envelope, once older
   * than `graceMs` (younger ones may be a transaction in progress on this or another node sharing
   * the spool), and envelopes whose message is gone (an interrupted moveToFailed).
   */
  async sweep(now: Date, graceMs = DEFAULT_GRACE_MS): Promise<{ removedUncommitted: number }> {
    let removedUncommitted = 0;
    const stale = async (file: string) => {
      const st = await stat(file).catch(ignoreMissing);
      return st !== undefined && now.getTime() - st.mtimeMs >= graceMs;
    };
    for (const f of await readdir(this.#tmp)) {
      const file = path.join(this.#tmp, f);
      if (!(await stale(file))) continue;
      await rm(file, { force: true });
      removedUncommitted += f.endsWith('.eml') ? 1 : 0;
    }
    const names = await readdir(this.#queue);
    const envelopes = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    const messages = new Set(names.filter((n) => n.endsWith('.eml')).map((n) => n.slice(0, -4)));
    for (const id of messages) {
      const file = path.join(this.#queue, `${id}.eml`);
      if (envelopes.has(id) || !(await stale(file))) continue;
      await rm(file, { force: true });
      removedUncommitted += 1;
    }
    for (const id of envelopes) {
      // Envelope without message: moveToFailed() was interrupted after moving the message to
      // failed/ (which has its own copy of the envelope). Nothing is left to deliver here.
      if (!messages.has(id)) await rm(path.join(this.#queue, `${id}.json`), { force: true });
    }
    return { removedUncommitted };
  }
}

/** Envelopes kept in memory at most (a backlog beyond is read from disk when its turn comes). */
const ENVELOPE_CACHE_LIMIT = 20_000;

function ignoreMissing(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}

async function fsyncFile(file: string): Promise<void> {
  const fh = await open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
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

async function writeFileDurably(file: string, content: string): Promise<void> {
  const fh = await open(file, 'w', 0o600);
  try {
    await fh.writeFile(content);
    await fh.sync();
  } finally {
    await fh.close();
  }
}
