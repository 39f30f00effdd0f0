import { randomBytes } from 'node:crypto';
import { createWriteStream, type ReadStream, createReadStream } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { GatewayError } from '../errors/index.js';
import type { SpoolEnvelope } from './spool-entry.js';

/**
 * The durable spool (ARCHITECTURE.md §6): a message is acknowledged only once it is here.
 *
 * Layout under `<dataDir>/spool`: `tmp/` (being written), `queue/` (committed: `<id>.eml` and
 * `<id>.json`), `failed/` (kept for the operator after a permanent failure).
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

  constructor(dataDir: string) {
    this.root = path.join(dataDir, 'spool');
    this.#tmp = path.join(this.root, 'tmp');
    this.#queue = path.join(this.root, 'queue');
    this.#failed = path.join(this.root, 'failed');
  }

  async init(): Promise<void> {
    for (const d of [this.#tmp, this.#queue, this.#failed]) await mkdir(d, { recursive: true, mode: 0o700 });
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
      await pipeline(body, out);
      await fsyncFile(file);
      return bytes;
    } catch (err) {
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
      await fsyncDir(this.#queue);
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

  async discard(id: string): Promise<void> {
    await Promise.all(
      [`${id}.eml`, `${id}.json`].flatMap((f) => [
        rm(path.join(this.#tmp, f), { force: true }),
        rm(path.join(this.#queue, f), { force: true }),
      ]),
    );
  }

  /** Rewrites the envelope (per-recipient state) atomically. */
  async update(envelope: SpoolEnvelope): Promise<void> {
    const tmp = path.join(this.#tmp, `${envelope.id}.json`);
    await writeFileDurably(tmp, JSON.stringify(envelope));
    await rename(tmp, path.join(this.#queue, `${envelope.id}.json`));
    await fsyncDir(this.#queue);
  }

  /** Removes a finished entry: envelope first, so a crash in between leaves an orphan the sweep removes. */
  async remove(id: string): Promise<void> {
    await rm(path.join(this.#queue, `${id}.json`), { force: true });
    await rm(path.join(this.#queue, `${id}.eml`), { force: true });
    await fsyncDir(this.#queue);
  }

  /** Moves an entry with permanently failed recipients to `failed/`, where the operator can inspect it. */
  async moveToFailed(envelope: SpoolEnvelope): Promise<void> {
    await writeFileDurably(path.join(this.#failed, `${envelope.id}.json`), JSON.stringify(envelope));
    await rename(path.join(this.#queue, `${envelope.id}.eml`), path.join(this.#failed, `${envelope.id}.eml`));
    await rm(path.join(this.#queue, `${envelope.id}.json`), { force: true });
    await fsyncDir(this.#failed);
    await fsyncDir(this.#queue);
  }

  openMessage(id: string): ReadStream {
    return createReadStream(this.messagePath(id));
  }

  async readMessage(id: string): Promise<Buffer> {
    return readFile(this.messagePath(id));
  }

  /**
   * Start-up sweep: removes what was never committed (files in `tmp/`, messages without envelope) and
   * returns every committed envelope, oldest first.
   */
  async recover(): Promise<{ envelopes: SpoolEnvelope[]; removedUncommitted: number }> {
    let removedUncommitted = 0;
    for (const f of await readdir(this.#tmp)) {
      await rm(path.join(this.#tmp, f), { force: true });
      removedUncommitted += f.endsWith('.eml') ? 1 : 0;
    }
    const names = (await readdir(this.#queue)).sort();
    const envelopes: SpoolEnvelope[] = [];
    const ids = new Set(names.filter((n) => n.endsWith('.json')).map((n) => n.slice(0, -5)));
    for (const n of names) {
      if (n.endsWith('.eml') && !ids.has(n.slice(0, -4))) {
        await rm(path.join(this.#queue, n), { force: true });
        removedUncommitted += 1;
      }
    }
    for (const id of ids) {
      const exists = await stat(this.messagePath(id)).then(
        () => true,
        () => false,
      );
      if (!exists) {
        // Envelope without message: moveToFailed() was interrupted after moving the message to
        // failed/ (which has its own copy of the envelope). Nothing is left to deliver here.
        await rm(path.join(this.#queue, `${id}.json`), { force: true });
        continue;
      }
      envelopes.push(
        JSON.parse(await readFile(path.join(this.#queue, `${id}.json`), 'utf8')) as SpoolEnvelope,
      );
    }
    return { envelopes, removedUncommitted };
  }
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
