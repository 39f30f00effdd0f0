import { randomBytes } from 'node:crypto';
import fs, {
  closeSync,
  createReadStream,
  fstatSync,
  openSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writevSync,
} from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, unlink } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { GatewayError } from '../errors/index.js';
import { GroupFsync } from './group-fsync.js';
import type { DestinationState, SpoolEnvelope } from './spool-entry.js';
import {
  ENTRY_SUFFIX,
  entryMessageStream,
  entryTail,
  readEntryEnvelope,
  readEntryMessageSync,
} from './spool-file.js';

/** Uncommitted files younger than this may belong to a transaction in progress (of any node). */
const DEFAULT_GRACE_MS = 10 * 60_000;

/**
 * The durable spool (ARCHITECTURE.md §6): a message is acknowledged only once it is here.
 *
 * Layout under `<dataDir>/spool`: `tmp/` (being written), `queue/` (committed: one file per entry,
 * `<id>.entry`, the message followed by its envelope; the format is in spool-file.ts), `state/` (per
 * destination: `<id>~<destination>.json`, the outcome of each recipient, written before the queue is
 * told), `failed/` (kept for the operator after a permanent failure: `<id>.json`, the envelope with
 * the final state of every destination, beside the entry file as it was in `queue/`). After commit an
 * entry never changes; progress lives in the state files, one writer each (the queue job of that
 * destination), so destinations worked in parallel never overwrite each other.
 *
 * Commit protocol, safe against kill -9 at any instant: the message is written into
 * `tmp/<id>.entry` (a small one held in memory until then and written with its envelope in one
 * write, a larger one streamed there as it comes and the envelope appended behind it), the file
 * fsynced once and renamed into `queue/`, then `queue/` is fsynced, one directory fsync shared by
 * every commit that renamed meanwhile (group commit). A name in `queue/` is the commit: the file there is complete (it was
 * fsynced before the rename), and a file in `tmp/` was never acknowledged and is swept. A message
 * thus costs one file fsync and a share of one directory fsync before its 250; nothing is fsynced
 * twice (the message is not fsynced on its own before its envelope is appended, and a submission's
 * added header is written before that one fsync).
 *
 * Entries of the previous version, `queue/<id>.eml` with `queue/<id>.json` (the envelope, then the
 * commit marker), are still listed, delivered, moved to `failed/` and removed, so a backlog survives
 * an upgrade; nothing writes them any more.
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
   * Where each entry's message ends (its envelope follows), for entries committed here or whose
   * envelope was read: the message is read without looking at the trailer again.
   */
  readonly #messageLengths = new Map<string, number>();
  /** Committed entries in the previous version's two files (found when `queue/` is listed). */
  readonly #legacy = new Set<string>();
  /**
   * State files known to exist (written or read here). An entry committed here has no state file
   * until one is written: reading or removing one then would only fail (ENOENT).
   */
  readonly #statesOnDisk = new Set<string>();
  /** Entries committed by this process (so their state files are all known to #statesOnDisk). */
  readonly #committedHere = new Set<string>();
  /** Directory fsyncs shared by concurrent commits (group commit). */
  readonly #dirSyncs = new GroupFsync();
  /** Messages received and not yet committed nor discarded: held in memory, or their open file. */
  readonly #uncommitted = new Map<string, Uncommitted>();
  /**
   * Messages committed here (up to HOLD_MAX_BYTES each), kept in memory for their first reading
   * (the local delivery right after commit) so that it does not read back from disk what was just
   * written. HELD_BUDGET_BYTES at most, counting the copies kept of larger messages being received;
   * the rest is read from the entry file.
   */
  readonly #held = new Map<string, readonly Buffer[]>();
  #heldBytes = 0;

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
    return `${now.getTime().toString(36).padStart(9, '0')}${randomHex(6)}`;
  }

  #tmpFile(id: string): string {
    return path.join(this.#tmp, `${id}${ENTRY_SUFFIX}`);
  }

  #entryFile(id: string): string {
    return path.join(this.#queue, `${id}${ENTRY_SUFFIX}`);
  }

  /** The two files of an entry of the previous version. */
  #legacyFiles(id: string): { message: string; envelope: string } {
    return { message: path.join(this.#queue, `${id}.eml`), envelope: path.join(this.#queue, `${id}.json`) };
  }

  /**
   * Receives `prefix` then `body`, whose pieces are buffers or lists of buffers (the header capture
   * passes a message on in lists of up to 64 KiB, written with one `writev` and never concatenated).
   * Returns the byte count. Call `commit` to make it durable and part
   * of the queue (its one fsync is there), or `discard` to drop it.
   *
   * A message of up to INLINE_BYTES stays in memory until its commit writes it with its envelope in
   * one write: nothing of it is on disk before (a message refused or cut short never touches it).
   * A larger one is streamed into `tmp/<id>.entry` from the moment it passes that size, and the
   * file stays open for the commit.
   *
   * A failing body (the client went away during DATA: smtp/spool-incoming.ts destroys it) ends the
   * write at once; then, as on any failure, the descriptor is closed and the temporary file removed
   * before this rejects.
   */
  async writeMessage(
    id: string,
    prefix: Buffer,
    body: AsyncIterable<Buffer | string | readonly Buffer[]> & { destroy(): void },
  ): Promise<number> {
    const file = this.#tmpFile(id);
    let head: Buffer[] = prefix.length > 0 ? [prefix] : [];
    let size = prefix.length;
    let fd: number | undefined;
    let kept: Buffer[] | undefined;
    try {
      for await (const chunk of body) {
        const pieces = piecesOf(chunk);
        const bytes = lengthOf(pieces);
        if (fd !== undefined) {
          await writeAt(fd, pieces, size);
          size += bytes;
          kept = this.#keep(kept, pieces, size);
          continue;
        }
        for (const piece of pieces) head.push(piece);
        size += bytes;
        if (size <= INLINE_BYTES) continue;
        // Too large to hold: on disk from here on, what was held first.
        fd = openSync(file, 'wx', 0o600);
        const first = head;
        head = [];
        await writeAt(fd, first, 0);
        kept = this.#keep([], first, size);
      }
    } catch (err) {
      body.destroy();
      this.#unkeep(kept);
      if (fd !== undefined) {
        closeQuietly(fd);
        unlinkQuietly(file);
      }
      throw new GatewayError(
        'SPOOL_FAILED',
        `cannot write spool file: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
    this.#uncommitted.set(
      id,
      fd === undefined ? { size, held: head } : { size, fd, ...(kept ? { kept } : {}) },
    );
    return size;
  }

  /**
   * A copy of a large message as it is written, for its first delivery: `pieces` join `kept` while
   * the message (now `size` octets) stays within HOLD_MAX_BYTES and the budget allows, else nothing
   * is kept of it. The pieces are the buffers received, referred to, not copied.
   */
  #keep(kept: Buffer[] | undefined, pieces: readonly Buffer[], size: number): Buffer[] | undefined {
    if (!kept) return undefined;
    const bytes = lengthOf(pieces);
    if (size > HOLD_MAX_BYTES || this.#heldBytes + bytes > HELD_BUDGET_BYTES) {
      this.#unkeep(kept);
      return undefined;
    }
    // One at a time: a client sending tiny records makes lists too long to spread as arguments.
    for (const piece of pieces) kept.push(piece);
    this.#heldBytes += bytes;
    return kept;
  }

  #unkeep(kept: readonly Buffer[] | undefined): void {
    for (const b of kept ?? []) this.#heldBytes -= b.length;
  }

  /**
   * Puts a header line on top of a message not yet committed (a submission's added `Sender:`). One
   * held in memory gets it there; one on disk is copied behind the new line into a new file renamed
   * over the original (the commit fsyncs the result). Returns the new size.
   */
  async prependToUncommitted(id: string, header: Buffer): Promise<number> {
    const pending = this.#uncommitted.get(id);
    if (!pending) throw new GatewayError('SPOOL_FAILED', `no message ${id} being received`, { id });
    if (pending.held) {
      const size = header.length + pending.size;
      this.#uncommitted.set(id, { size, held: [header, ...pending.held] });
      return size;
    }
    const file = this.#tmpFile(id);
    const next = `${file}.next`;
    let copy: number | undefined;
    try {
      copy = openSync(next, 'wx', 0o600);
      await writeAt(copy, [header], 0);
      let at = header.length;
      for await (const chunk of createReadStream(file)) {
        await writeAt(copy, [chunk as Buffer], at);
        at += (chunk as Buffer).length;
      }
      renameSync(next, file);
      closeQuietly(pending.fd!);
      // What was kept of it lacks the header: read from the file when delivered.
      this.#unkeep(pending.kept);
      this.#uncommitted.set(id, { size: at, fd: copy });
      return at;
    } catch (err) {
      if (copy !== undefined) closeQuietly(copy);
      unlinkQuietly(next);
      throw new GatewayError(
        'SPOOL_FAILED',
        `cannot rewrite spool file: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
  }

  /**
   * Writes the entry (a held message with its envelope in one write, or the envelope behind a message
   * already on disk), fsyncs the file, renames it into `queue/` and fsyncs `queue/` (shared with
   * concurrent commits). Once this returns, the entry survives a crash and the 250 may be sent; if
   * it throws, nothing of the entry is left.
   *
   * The open, the write of a held message (at most INLINE_BYTES and its envelope), the close and the
   * rename are page-cache operations of a few microseconds, made inline: each would cost more as a
   * thread-pool round trip (the request handed over, a thread woken, the event loop woken again).
   * The fsyncs, which wait for the disk, run in the thread pool.
   */
  async commit(envelope: SpoolEnvelope): Promise<void> {
    const { id } = envelope;
    const tmp = this.#tmpFile(id);
    const pending = this.#uncommitted.get(id);
    this.#uncommitted.delete(id);
    let renamed = false;
    let written = false;
    try {
      if (!pending) throw new GatewayError('SPOOL_FAILED', `no message ${id} being received`, { id });
      if (pending.size !== envelope.size)
        throw new GatewayError(
          'SPOOL_FAILED',
          `message of ${pending.size} bytes, the envelope says ${envelope.size}`,
        );
      const messageLength = pending.size;
      const tail = entryTail(envelope, messageLength);
      let fd = pending.fd;
      try {
        if (pending.held) {
          fd = openSync(tmp, 'wx', 0o600);
          written = true;
          writeFullySync(fd, [...pending.held, tail], 0);
        } else {
          written = true;
          // The file a slow client's transaction kept open may have been swept from tmp/ as stale
          // meanwhile (the rename below then fails) or cut short: never acknowledged.
          const onDisk = fstatSync(fd!).size;
          if (onDisk !== messageLength)
            throw new GatewayError(
              'SPOOL_FAILED',
              `message file holds ${onDisk} bytes, ${messageLength} were received`,
            );
          writeFullySync(fd!, [tail], messageLength);
        }
        await fsyncFd(fd!);
      } finally {
        if (fd !== undefined) closeSync(fd);
      }
      renameSync(tmp, this.#entryFile(id));
      renamed = true;
      await this.#syncDir(this.#queue);
      if (envelope.recipients.some((r) => (r.route ?? 'local') === 'local')) this.#fresh.add(id);
      this.#committedHere.add(id);
      if (this.#envelopes.size < ENVELOPE_CACHE_LIMIT) this.#envelopes.set(id, envelope);
      this.#rememberLength(id, messageLength);
      if (pending.kept) this.#held.set(id, pending.kept);
      else if (pending.held && this.#heldBytes + messageLength <= HELD_BUDGET_BYTES) {
        this.#held.set(id, pending.held);
        this.#heldBytes += messageLength;
      }
    } catch (err) {
      this.#unkeep(pending?.kept);
      // Not acknowledged: a renamed entry whose directory fsync failed goes too (the client retries).
      if (written && !renamed) unlinkQuietly(tmp);
      if (renamed) unlinkQuietly(this.#entryFile(id));
      throw new GatewayError(
        'SPOOL_FAILED',
        `cannot commit spool entry: ${(err as Error).message}`,
        {},
        { cause: err },
      );
    }
  }

  #rememberLength(id: string, messageLength: number): void {
    if (this.#messageLengths.size < ENVELOPE_CACHE_LIMIT) this.#messageLengths.set(id, messageLength);
  }

  /** What the process holds about an entry that is leaving the queue. */
  #forget(id: string): void {
    this.#fresh.delete(id);
    this.#envelopes.delete(id);
    this.#messageLengths.delete(id);
    this.#release(id);
  }

  /** The held copy of a message is dropped (read once, or its entry is leaving). */
  #release(id: string): readonly Buffer[] | undefined {
    const held = this.#held.get(id);
    if (held) {
      this.#held.delete(id);
      this.#unkeep(held);
    }
    return held;
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

  /** Drops a message received but not committed (refused after DATA). */
  async discard(id: string): Promise<void> {
    const pending = this.#uncommitted.get(id);
    this.#uncommitted.delete(id);
    if (pending?.held) return;
    this.#unkeep(pending?.kept);
    if (pending?.fd !== undefined) closeQuietly(pending.fd);
    await unlinkIfThere(this.#tmpFile(id));
  }

  /** The committed envelope, or undefined when the entry is gone (finished, or never committed). */
  async readEnvelope(id: string): Promise<SpoolEnvelope | undefined> {
    const known = this.#envelopes.get(id);
    if (known) return known;
    if (this.#legacy.has(id)) {
      const text = await readFile(this.#legacyFiles(id).envelope, 'utf8').catch(ignoreMissing);
      return text === undefined ? undefined : (JSON.parse(text) as SpoolEnvelope);
    }
    const fh = await open(this.#entryFile(id), 'r').catch(ignoreMissing);
    if (!fh) return undefined;
    try {
      const { envelope, messageLength } = await readEntryEnvelope(fh, id);
      this.#rememberLength(id, messageLength);
      return envelope;
    } finally {
      await fh.close();
    }
  }

  /** Committed entries and the age of the oldest (its id starts with its time, see newId). */
  async stats(now: Date): Promise<{ messages: number; oldestAgeSeconds: number }> {
    const ids = await this.committedIds();
    const first = ids[0];
    if (first === undefined) return { messages: 0, oldestAgeSeconds: 0 };
    const at = parseInt(first.slice(0, 9), 36);
    return { messages: ids.length, oldestAgeSeconds: Math.max(0, (now.getTime() - at) / 1000) };
  }

  /** Ids of every committed entry, oldest first (the previous version's included). */
  async committedIds(): Promise<string[]> {
    const ids: string[] = [];
    for (const name of await readdir(this.#queue)) {
      if (name.endsWith(ENTRY_SUFFIX)) ids.push(name.slice(0, -ENTRY_SUFFIX.length));
      else if (name.endsWith('.json')) {
        const id = name.slice(0, -5);
        this.#legacy.add(id);
        ids.push(id);
      }
    }
    return ids.sort();
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

  #syncDir(dir: string): Promise<void> {
    return this.#dirSyncs.sync(dir);
  }

  /**
   * Removes a finished entry (its state files after it, so a crash in between leaves state files
   * the start-up sweep removes). `durable` (when a destination is another operator) fsyncs the
   * removal; without it a power loss may bring back an entry already delivered into our store,
   * which the next attempt finds there (exactly once, §6) rather than delivering again, so the
   * fsync is saved.
   */
  async remove(id: string, destinations: readonly string[], durable = true): Promise<void> {
    this.#forget(id);
    if (this.#legacy.has(id)) {
      // Envelope (the commit marker) first: a crash in between leaves a message the sweep removes.
      const { message, envelope } = this.#legacyFiles(id);
      await unlinkIfThere(envelope);
      await unlinkIfThere(message);
      this.#legacy.delete(id);
    } else unlinkIfThereSync(this.#entryFile(id));
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
        return none ? Promise.resolve() : unlinkIfThere(this.#statePath(id, d));
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
    this.#forget(id);
    await writeFileDurably(path.join(this.#failed, `${id}.json`), JSON.stringify({ envelope, states }));
    const legacy = this.#legacy.has(id);
    const [from, to] = legacy
      ? [this.#legacyFiles(id).message, path.join(this.#failed, `${id}.eml`)]
      : [this.#entryFile(id), path.join(this.#failed, `${id}${ENTRY_SUFFIX}`)];
    try {
      await rename(from, to);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (legacy) {
      await rm(this.#legacyFiles(id).envelope, { force: true });
      this.#legacy.delete(id);
    }
    await this.#syncDir(this.#failed);
    await this.#syncDir(this.#queue);
    await this.#removeStates(
      id,
      states.map((st) => st.destination),
    );
  }

  /**
   * The message of a committed entry (without its envelope): the first time, from memory when it
   * was held since its commit; then streamed from the disk.
   */
  openMessage(id: string): Readable {
    const held = this.#release(id);
    if (held) return Readable.from(held);
    if (this.#legacy.has(id)) return createReadStream(this.#legacyFiles(id).message);
    return entryMessageStream(this.#entryFile(id), id, this.#messageLengths.get(id));
  }

  /** The whole message of a committed entry, read at once (a DSN returning the original). */
  readMessageSync(id: string): Buffer {
    if (this.#legacy.has(id)) return readFileSync(this.#legacyFiles(id).message);
    return readEntryMessageSync(this.#entryFile(id), id);
  }

  /**
   * At start, before anything is written (the spool belongs to this node alone, so no transaction
   * of another process can be in progress): removes every temporary file a killed process left —
   * everything in `tmp/` (entries never committed, a submission's `.next` copy) and the `.tmp` files
   * of interrupted state writes — and state files of entries no longer committed (a removal cut
   * short). None is referred to by a committed entry. Returns how many went.
   */
  async sweepAtStart(): Promise<{ removedTemporary: number }> {
    let removedTemporary = 0;
    for (const f of await readdir(this.#tmp)) {
      await rm(path.join(this.#tmp, f), { force: true });
      removedTemporary += 1;
    }
    const committed = new Set(await this.committedIds());
    for (const f of await readdir(this.#state)) {
      const id = f.slice(0, f.indexOf('~'));
      if (f.endsWith('.json') && committed.has(id)) continue;
      await rm(path.join(this.#state, f), { force: true });
      removedTemporary += 1;
    }
    return { removedTemporary };
  }

  /**
   * Removes what was never committed: files in `tmp/` once older than `graceMs` (younger ones may be
   * a transaction in progress), and, of the previous version's entries, messages without an
   * envelope (a commit cut short, as old) and envelopes whose message is gone (an interrupted
   * moveToFailed).
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
      removedUncommitted += f.endsWith(ENTRY_SUFFIX) || f.endsWith('.eml') ? 1 : 0;
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
      if (!messages.has(id)) {
        await rm(path.join(this.#queue, `${id}.json`), { force: true });
        this.#legacy.delete(id);
      }
    }
    return { removedUncommitted };
  }
}

/** Envelopes kept in memory at most (a backlog beyond is read from disk when its turn comes). */
const ENVELOPE_CACHE_LIMIT = 20_000;
/**
 * A message up to this size is held in memory until its commit writes it, envelope included, in
 * one write (the header capture holds as much of it in any case); a larger one is streamed to disk.
 */
export const INLINE_BYTES = 64 * 1024;
/** A message larger than this is read from disk for its delivery, never held in memory. */
const HOLD_MAX_BYTES = 1024 * 1024;
/** Messages held in memory for their first delivery (and copies kept while received), in all. */
const HELD_BUDGET_BYTES = 32 * 1024 * 1024;

/** A message received and not yet committed: in memory (small), or in its open file in `tmp/`. */
interface Uncommitted {
  readonly size: number;
  readonly held?: readonly Buffer[];
  /** The descriptor of `tmp/<id>.entry`, open for writing. */
  readonly fd?: number;
  /** A copy of what was written there, for the first delivery (see Spool.#keep). */
  readonly kept?: Buffer[];
}

/** Random octets for ids, drawn from the system's generator 4 KiB at a time rather than per id. */
let randomPool = Buffer.alloc(0);
let randomAt = 0;

function randomHex(octets: number): string {
  if (randomAt + octets > randomPool.length) {
    randomPool = randomBytes(4096);
    randomAt = 0;
  }
  randomAt += octets;
  return randomPool.toString('hex', randomAt - octets, randomAt);
}

function ignoreMissing(err: NodeJS.ErrnoException): undefined {
  if (err.code === 'ENOENT') return undefined;
  throw err;
}

/** Removes a file that may be gone already: one unlink (rm's force costs an lstat before it). */
async function unlinkIfThere(file: string): Promise<void> {
  await unlink(file).catch(ignoreMissing);
}

/** Removes a file that may be gone already, inline (a page-cache operation, see Spool.commit). */
function unlinkIfThereSync(file: string): void {
  try {
    unlinkSync(file);
  } catch (err) {
    ignoreMissing(err as NodeJS.ErrnoException);
  }
}

/** Cleanup after a failure that is being reported already: its own failure would hide that one. */
function unlinkQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // gone already, or the disk fails: the original error says so
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // as above
  }
}

/** The buffers of a piece of a message body (see Spool.writeMessage). */
function piecesOf(chunk: Buffer | string | readonly Buffer[]): readonly Buffer[] {
  if (typeof chunk === 'string') return [Buffer.from(chunk, 'latin1')];
  return Buffer.isBuffer(chunk) ? [chunk] : chunk;
}

function lengthOf(pieces: readonly Buffer[]): number {
  let n = 0;
  for (const p of pieces) n += p.length;
  return n;
}

/** What is left of `pieces` once their first `written` octets are on disk (a short write). */
function after(pieces: readonly Buffer[], written: number): readonly Buffer[] {
  let skip = written;
  let i = 0;
  while (i < pieces.length && skip >= pieces[i]!.length) skip -= pieces[i++]!.length;
  const rest = pieces.slice(i);
  if (skip > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(skip);
  return rest;
}

/**
 * Writes all of `pieces` at `position` in the thread pool, one `pwritev` for all of them (a large
 * message's pieces): the kernel gathers them, nothing is concatenated here first.
 */
async function writeAt(fd: number, pieces: readonly Buffer[], position: number): Promise<void> {
  let rest = pieces;
  let at = position;
  let left = lengthOf(pieces);
  while (left > 0) {
    const written = await writevFd(fd, rest, at);
    if (written === 0) throw new GatewayError('SPOOL_FAILED', 'the spool file took no more bytes');
    left -= written;
    at += written;
    if (left > 0) rest = after(rest, written);
  }
}

function writevFd(fd: number, pieces: readonly Buffer[], position: number): Promise<number> {
  return new Promise((resolve, reject) =>
    fs.writev(fd, pieces, position, (err, written) => (err ? reject(err) : resolve(written))),
  );
}

/** Writes all of `pieces` at `position`, inline (a small message and its envelope, or a tail). */
function writeFullySync(fd: number, pieces: readonly Buffer[], position: number): void {
  let rest = pieces;
  let at = position;
  let left = lengthOf(pieces);
  while (left > 0) {
    const written = writevSync(fd, rest, at);
    if (written === 0) throw new GatewayError('SPOOL_FAILED', 'the spool file took no more bytes');
    left -= written;
    at += written;
    if (left > 0) rest = after(rest, written);
  }
}

/** fsync in the thread pool (through `fs`, where the spool's tests count them). */
function fsyncFd(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fs.fsync(fd, (err) => (err ? reject(err) : resolve())));
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
