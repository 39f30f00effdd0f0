import fs, {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { open } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { INLINE_BYTES, parseSpoolEntry, Spool, type SpoolEnvelope } from '../../src/delivery/index.js';
import { isGatewayError } from '../../src/errors/index.js';

/**
 * The spool on a real file system: one file per entry (message, then envelope, then trailer), one
 * file fsync per commit and directory fsyncs shared by concurrent commits, and the entries of the
 * previous version (two files) still read, delivered and removed.
 */

/**
 * Counts every fsync of the spool, of files and of directories, passing each one through: those of
 * FileHandle.sync (directories, state files) and of fs.fsync (entry files, by descriptor).
 */
const fsyncs = { files: 0, directories: 0, restore: () => {} };
beforeAll(async () => {
  const probe = await open(os.devNull, 'r');
  const proto = Object.getPrototypeOf(probe) as {
    sync: () => Promise<void>;
    stat: () => Promise<{ isDirectory: () => boolean }>;
  };
  await probe.close();
  const sync = proto.sync;
  proto.sync = async function (this: typeof proto) {
    if ((await this.stat()).isDirectory()) fsyncs.directories += 1;
    else fsyncs.files += 1;
    return sync.call(this);
  };
  const fsync = fs.fsync;
  fs.fsync = ((fd: number, callback: (err: NodeJS.ErrnoException | null) => void) => {
    if (fs.fstatSync(fd).isDirectory()) fsyncs.directories += 1;
    else fsyncs.files += 1;
    fsync(fd, callback);
  }) as typeof fs.fsync;
  fsyncs.restore = () => {
    proto.sync = sync;
    fs.fsync = fsync;
  };
});
const spentSince = (before: { files: number; directories: number }) => ({
  files: fsyncs.files - before.files,
  directories: fsyncs.directories - before.directories,
});
afterAll(() => fsyncs.restore());

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'spool-test-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const MESSAGE = 'Received: from mx.peer.mssante.test\r\nSubject: résultats\r\n\r\nbonjour\r\n';

function envelopeOf(id: string, size: number, over: Partial<SpoolEnvelope> = {}): SpoolEnvelope {
  return {
    id,
    version: 1,
    receivedAt: '2026-12-07T21:00:00.000Z',
    mailFrom: 'labo@peer.mssante.test',
    channel: 'mx',
    size,
    messageId: `<${id}@peer.mssante.test>`,
    peer: { address: '127.0.0.1', dn: 'CN=peer' },
    recipients: [{ address: 'jeanne@op.mssante.test', route: 'local', state: 'pending', attempts: 0 }],
    nextAttemptAt: '2026-12-07T21:00:00.000Z',
    ...over,
  };
}

async function spoolOf(): Promise<Spool> {
  const spool = new Spool(dir);
  await spool.init();
  return spool;
}

async function writeAndCommit(spool: Spool, body: string, over: Partial<SpoolEnvelope> = {}) {
  const id = spool.newId(new Date());
  const size = await spool.writeMessage(
    id,
    Buffer.from('X-First: 1\r\n'),
    Readable.from([Buffer.from(body)]),
  );
  const envelope = envelopeOf(id, size, over);
  await spool.commit(envelope);
  return envelope;
}

async function text(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

const queueDir = () => path.join(dir, 'spool', 'queue');

describe('spool entries: one file each', () => {
  it('commits the message and its envelope in one file with one file fsync and one directory fsync', async () => {
    const spool = await spoolOf();
    const before = { ...fsyncs };
    const envelope = await writeAndCommit(spool, MESSAGE);
    expect(spentSince(before)).toEqual({ files: 1, directories: 1 });
    expect(readdirSync(queueDir())).toEqual([`${envelope.id}.entry`]);
    expect(readdirSync(path.join(dir, 'spool', 'tmp'))).toEqual([]);
    const file = readFileSync(path.join(queueDir(), `${envelope.id}.entry`));
    const parsed = parseSpoolEntry(file);
    expect(parsed.envelope).toEqual(envelope);
    expect(parsed.message.toString('utf8')).toBe(`X-First: 1\r\n${MESSAGE}`);
    expect(envelope.size).toBe(parsed.message.length);
    // The trailer is last, fixed-size, and gives both lengths.
    expect(file.subarray(file.length - 44).toString('latin1')).toMatch(
      /^MSSGW-SPOOL\/2 M=[0-9a-f]{16} E=[0-9a-f]{8}\n$/,
    );
    // Readers get the message alone: streamed, or whole for a DSN.
    expect(await text(spool.openMessage(envelope.id))).toBe(`X-First: 1\r\n${MESSAGE}`);
    expect(spool.readMessageSync(envelope.id).toString('utf8')).toBe(`X-First: 1\r\n${MESSAGE}`);
  });

  it('lets concurrent commits share the directory fsync (group commit)', async () => {
    const spool = await spoolOf();
    const before = { ...fsyncs };
    const entries = await Promise.all(
      Array.from({ length: 20 }, (_, i) => writeAndCommit(spool, `n ${i}\r\n`)),
    );
    const spent = spentSince(before);
    // One fsync per file, and commits that renamed while a directory fsync ran shared the next one.
    expect(spent.files).toBe(20);
    expect(spent.directories).toBeGreaterThanOrEqual(1);
    expect(spent.directories).toBeLessThan(20);
    expect(readdirSync(queueDir()).sort()).toEqual(entries.map((e) => `${e.id}.entry`).sort());
  });

  it('fsyncs a submission once, after the header put on top', async () => {
    const spool = await spoolOf();
    // Held in memory, and streamed to its file (larger than what is held).
    for (const message of [MESSAGE, `${MESSAGE}${'s'.repeat(INLINE_BYTES)}\r\n`]) {
      const id = spool.newId(new Date());
      const before = { ...fsyncs };
      const written = await spool.writeMessage(id, Buffer.alloc(0), Readable.from([Buffer.from(message)]));
      const size = await spool.prependToUncommitted(id, Buffer.from('Sender: <a@op.mssante.test>\r\n'));
      expect(size).toBe(written + 'Sender: <a@op.mssante.test>\r\n'.length);
      await spool.commit(envelopeOf(id, size));
      expect(spentSince(before)).toEqual({ files: 1, directories: 1 });
      expect(await text(spool.openMessage(id))).toBe(`Sender: <a@op.mssante.test>\r\n${message}`);
      expect(parseSpoolEntry(readFileSync(path.join(queueDir(), `${id}.entry`))).message.toString()).toBe(
        `Sender: <a@op.mssante.test>\r\n${message}`,
      );
    }
    expect(readdirSync(path.join(dir, 'spool', 'tmp'))).toEqual([]);
  });

  it('reads entries back after a restart, envelope from the trailer, message without it', async () => {
    const first = await spoolOf();
    const big = 'x'.repeat(70) + '\r\n';
    // One small envelope (read with the trailer in one read) and one larger than the tail read.
    const small = await writeAndCommit(first, MESSAGE);
    const recipients = Array.from({ length: 200 }, (_, i) => ({
      address: `destinataire.${i}@op.mssante.test`,
      route: 'local' as const,
      state: 'pending' as const,
      attempts: 0,
    }));
    const large = await writeAndCommit(first, big.repeat(100), { recipients });
    const again = await spoolOf();
    expect(await again.committedIds()).toEqual([small.id, large.id].sort());
    // The message first, before its envelope was ever read by this process.
    expect(await text(again.openMessage(large.id))).toBe(`X-First: 1\r\n${big.repeat(100)}`);
    expect(await again.readEnvelope(small.id)).toEqual(small);
    expect(await again.readEnvelope(large.id)).toEqual(large);
    expect(again.readMessageSync(small.id).toString('utf8')).toBe(`X-First: 1\r\n${MESSAGE}`);
    await again.remove(small.id, ['local']);
    await again.remove(large.id, ['local']);
    expect(readdirSync(queueDir())).toEqual([]);
    expect(await again.readEnvelope(small.id)).toBeUndefined();
  });

  it('refuses a damaged entry with SPOOL_FAILED, naming it', async () => {
    const spool = await spoolOf();
    const envelope = await writeAndCommit(spool, MESSAGE);
    truncateSync(path.join(queueDir(), `${envelope.id}.entry`), 60);
    const again = await spoolOf();
    const err: unknown = await again.readEnvelope(envelope.id).catch((e: unknown) => e);
    expect(isGatewayError(err) && err.code).toBe('SPOOL_FAILED');
    expect((err as Error).message).toContain(envelope.id);
  });

  it('holds a small message in memory until its commit, which writes it with its envelope once', async () => {
    const spool = await spoolOf();
    const id = spool.newId(new Date());
    await spool.writeMessage(id, Buffer.from('X-First: 1\r\n'), Readable.from([Buffer.from(MESSAGE)]));
    // Nothing on disk before the commit: a message refused or cut short never touches it.
    expect(readdirSync(path.join(dir, 'spool', 'tmp'))).toEqual([]);
    const large = spool.newId(new Date());
    const body = Buffer.alloc(INLINE_BYTES + 1, 'y');
    await spool.writeMessage(
      large,
      Buffer.alloc(0),
      Readable.from([body.subarray(0, 1000), body.subarray(1000)]),
    );
    // A larger one is in its file as it comes.
    expect(readFileSync(path.join(dir, 'spool', 'tmp', `${large}.entry`))).toEqual(body);
    await spool.discard(large);
    expect(readdirSync(path.join(dir, 'spool', 'tmp'))).toEqual([]);
  });

  it('gives the first reading of a message just committed from memory, the next ones from its entry', async () => {
    const spool = await spoolOf();
    // Small (held whole until its commit) and large (streamed to its file, a copy kept).
    for (const body of [MESSAGE, `${MESSAGE}${'k'.repeat(3 * INLINE_BYTES)}\r\n`]) {
      const kept = await writeAndCommit(spool, body);
      expect(await text(spool.openMessage(kept.id))).toBe(`X-First: 1\r\n${body}`);
      expect(await text(spool.openMessage(kept.id))).toBe(`X-First: 1\r\n${body}`);
      // Proof that the first reading does not touch the disk: the entry is gone before it.
      const gone = await writeAndCommit(spool, body);
      rmSync(path.join(queueDir(), `${gone.id}.entry`));
      expect(await text(spool.openMessage(gone.id))).toBe(`X-First: 1\r\n${body}`);
      await expect(text(spool.openMessage(gone.id))).rejects.toThrow(/ENOENT/);
    }
  });

  it('writes a message given as lists of pieces, however many and small, and reads it back whole', async () => {
    const spool = await spoolOf();
    // A client sending one-byte records: lists far longer than a call's argument limit.
    const bytes = Buffer.from(`${MESSAGE}${'y'.repeat(3 * INLINE_BYTES)}\r\n`);
    const pieces = Array.from(bytes, (_, i) => bytes.subarray(i, i + 1));
    const id = spool.newId(new Date());
    const size = await spool.writeMessage(
      id,
      Buffer.from('X-First: 1\r\n'),
      Readable.from([pieces.slice(0, 100), pieces.slice(100)], { objectMode: true }),
    );
    expect(size).toBe(bytes.length + 12);
    await spool.commit(envelopeOf(id, size));
    expect(await text(spool.openMessage(id))).toBe(`X-First: 1\r\n${bytes.toString('utf8')}`);
    expect(await text(spool.openMessage(id))).toBe(`X-First: 1\r\n${bytes.toString('utf8')}`);
  });

  it('refuses to commit a message whose file is gone or cut short (swept while a slow client still sent)', async () => {
    const spool = await spoolOf();
    // Larger than what is held in memory: the message is in its file in tmp/ while it comes.
    const big = `${MESSAGE}${'z'.repeat(INLINE_BYTES)}\r\n`;
    for (const damage of ['gone', 'short'] as const) {
      const id = spool.newId(new Date());
      const size = await spool.writeMessage(id, Buffer.alloc(0), Readable.from([Buffer.from(big)]));
      const file = path.join(dir, 'spool', 'tmp', `${id}.entry`);
      if (damage === 'gone') rmSync(file);
      else truncateSync(file, 10);
      const err: unknown = await spool.commit(envelopeOf(id, size)).catch((e: unknown) => e);
      expect(isGatewayError(err) && err.code).toBe('SPOOL_FAILED');
      expect(readdirSync(queueDir())).toEqual([]);
      expect(readdirSync(path.join(dir, 'spool', 'tmp'))).toEqual([]);
    }
  });

  it('discards an uncommitted message and sweeps what a killed process left in tmp/', async () => {
    const spool = await spoolOf();
    const id = spool.newId(new Date());
    await spool.writeMessage(id, Buffer.alloc(0), Readable.from([Buffer.from(MESSAGE)]));
    await spool.discard(id);
    expect(readdirSync(path.join(dir, 'spool', 'tmp'))).toEqual([]);
    writeFileSync(path.join(dir, 'spool', 'tmp', `${spool.newId(new Date())}.entry`), 'partial');
    const kept = await writeAndCommit(spool, MESSAGE);
    const again = await spoolOf();
    expect(await again.sweepAtStart()).toEqual({ removedTemporary: 1 });
    expect(await again.committedIds()).toEqual([kept.id]);
  });
});

describe('entries of the previous version (two files)', () => {
  /** What the previous version committed: the message, and its envelope as the commit marker. */
  function legacyEntry(id: string): SpoolEnvelope {
    const envelope = envelopeOf(id, Buffer.byteLength(MESSAGE));
    writeFileSync(path.join(queueDir(), `${id}.eml`), MESSAGE);
    writeFileSync(path.join(queueDir(), `${id}.json`), JSON.stringify(envelope));
    return envelope;
  }

  it('are listed, read, delivered from and removed beside new ones', async () => {
    const spool = await spoolOf();
    const old = legacyEntry(spool.newId(new Date(Date.now() - 60_000)));
    const fresh = await writeAndCommit(spool, MESSAGE);
    const upgraded = await spoolOf();
    expect(await upgraded.committedIds()).toEqual([old.id, fresh.id]);
    expect(await upgraded.readEnvelope(old.id)).toEqual(old);
    expect(await text(upgraded.openMessage(old.id))).toBe(MESSAGE);
    expect(upgraded.readMessageSync(old.id).toString('utf8')).toBe(MESSAGE);
    expect(await upgraded.stats(new Date())).toMatchObject({ messages: 2 });
    await upgraded.remove(old.id, ['local']);
    expect(readdirSync(queueDir())).toEqual([`${fresh.id}.entry`]);
  });

  it('move to failed/ with their final states', async () => {
    const spool = await spoolOf();
    const old = legacyEntry(spool.newId(new Date()));
    const current = await writeAndCommit(spool, MESSAGE);
    await spool.committedIds();
    const state = {
      version: 1 as const,
      spoolId: old.id,
      destination: 'local',
      recipients: [],
      attempts: 1,
      final: true,
    };
    await spool.moveToFailed(old, [state]);
    await spool.moveToFailed(current, [{ ...state, spoolId: current.id }]);
    expect(readdirSync(queueDir())).toEqual([]);
    const failed = readdirSync(path.join(dir, 'spool', 'failed')).sort();
    expect(failed).toEqual(
      [`${old.id}.eml`, `${old.id}.json`, `${current.id}.entry`, `${current.id}.json`].sort(),
    );
    expect(
      parseSpoolEntry(readFileSync(path.join(dir, 'spool', 'failed', `${current.id}.entry`))).envelope,
    ).toEqual(current);
  });

  it('half-committed ones (message without envelope) are swept once old', async () => {
    const spool = await spoolOf();
    const id = spool.newId(new Date());
    writeFileSync(path.join(queueDir(), `${id}.eml`), MESSAGE);
    expect(await spool.sweep(new Date(), 60_000)).toEqual({ removedUncommitted: 0 });
    expect(await spool.sweep(new Date(Date.now() + 120_000), 60_000)).toEqual({ removedUncommitted: 1 });
    expect(existsSync(path.join(queueDir(), `${id}.eml`))).toBe(false);
  });
});
