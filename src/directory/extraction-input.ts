import { createReadStream } from 'node:fs';
import { open as openFile, stat } from 'node:fs/promises';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { isUtf8 } from 'node:buffer';
import { type ZlibOptions, crc32, createInflateRaw } from 'node:zlib';
import yauzl from 'yauzl';
import { refusal } from './mirror-outcome.js';

/**
 * Reading the extraction as a stream: the national file is a ZIP (~20 MB) holding one text file
 * (~90 MB), or the text file itself. Nothing here holds more than one chunk and one line in memory.
 */

const ZIP_MAGIC = Buffer.from([0x50, 0x4b, 0x03, 0x04]);

async function startsWithZipMagic(file: string): Promise<boolean> {
  const fh = await openFile(file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    return bytesRead === 4 && head.equals(ZIP_MAGIC);
  } finally {
    await fh.close();
  }
}

function openZip(file: string): Promise<yauzl.ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, autoClose: false, validateEntrySizes: true }, (err, zip) =>
      err ? reject(refusal('malformed', `not a valid ZIP: ${err.message}`)) : resolve(zip),
    );
  });
}

function fileEntries(zip: yauzl.ZipFile): Promise<yauzl.Entry[]> {
  return new Promise((resolve, reject) => {
    const entries: yauzl.Entry[] = [];
    zip.on('entry', (entry: yauzl.Entry) => {
      if (!entry.fileName.endsWith('/')) entries.push(entry);
      zip.readEntry();
    });
    zip.once('end', () => resolve(entries));
    zip.once('error', (err: Error) => reject(refusal('malformed', `not a valid ZIP: ${err.message}`)));
    zip.readEntry();
  });
}

/** The one text file of the archive (or the one named like the extraction among several). */
function pickEntry(entries: readonly yauzl.Entry[]): yauzl.Entry {
  if (entries.length === 1) return entries[0]!;
  const named = entries.filter((e) => /Extraction_Correspondance_MSSante[^/]*\.txt$/i.test(e.fileName));
  if (named.length === 1) return named[0]!;
  throw refusal(
    'malformed',
    `the ZIP holds ${entries.length} files; expected one Extraction_Correspondance_MSSante text file`,
  );
}

/**
 * The CRC-32 and the size the archive announces (APPNOTE 4.4.7, 4.4.9): a corrupted archive must not
 * pass for a short one. yauzl is asked for the raw bytes (it checks neither when it does not inflate).
 */
class EntryCheck extends Transform {
  #crc = 0;
  #bytes = 0;
  constructor(private readonly entry: yauzl.Entry) {
    super({ readableHighWaterMark: INFLATED_AHEAD });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    this.#crc = crc32(chunk, this.#crc);
    this.#bytes += chunk.length;
    if (this.#bytes > this.entry.uncompressedSize) {
      done(refusal('malformed', `${this.entry.fileName} in the ZIP is larger than its announced size`));
      return;
    }
    done(null, chunk);
  }
  override _flush(done: TransformCallback): void {
    const { fileName, crc32: expected, uncompressedSize } = this.entry;
    if (this.#bytes !== uncompressedSize)
      done(refusal('malformed', `${fileName} in the ZIP is shorter than its announced size`));
    else if (this.#crc >>> 0 !== expected >>> 0)
      done(refusal('malformed', `${fileName} in the ZIP fails its CRC-32 check`));
    else done(null);
  }
}

/**
 * Inflated here rather than by yauzl: with 256 KiB output chunks instead of zlib's default 16 KiB,
 * inflating the national file costs a fifth of the CPU time (fewer chunks through fewer streams).
 */
const INFLATE_CHUNK = 256 * 1024;
/**
 * Inflated bytes that may wait for the reader, at each of the two streams after the inflater: it runs
 * on a thread of its own and keeps going while a chunk is parsed (with the default 16 KiB, one 256 KiB
 * chunk waiting stopped it).
 */
const INFLATED_AHEAD = 1024 * 1024;
const DEFLATE = 8;
const STORED = 0;

/**
 * The compressed bytes are read straight from the file in pieces of 1 MiB: yauzl reads them 16 KiB at
 * a time through two more streams, and each piece then cost a read, a thread-pool round trip of the
 * inflater and a trip through four streams (1,300 of them for the national file; yauzl's reads alone
 * were 6 % of the load's CPU profile). yauzl still finds the entry and checks its local header.
 */
const COMPRESSED_PIECE = 1024 * 1024;

function localDataStart(zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<number> {
  return new Promise((resolve, reject) => {
    zip.readLocalFileHeader(entry, { minimal: true }, (err, header) => {
      if (err) reject(refusal('malformed', `cannot read ${entry.fileName} in the ZIP: ${err.message}`));
      else resolve(header.fileDataStart);
    });
  });
}

async function entryStream(file: string, zip: yauzl.ZipFile, entry: yauzl.Entry): Promise<Readable> {
  const method = entry.compressionMethod;
  if ((method !== DEFLATE && method !== STORED) || entry.isEncrypted())
    throw refusal(
      'malformed',
      `${entry.fileName} in the ZIP is encrypted or not deflated (method ${method})`,
    );
  const start = await localDataStart(zip, entry);
  const raw =
    entry.compressedSize === 0
      ? Readable.from([])
      : createReadStream(file, {
          start,
          end: start + entry.compressedSize - 1,
          highWaterMark: COMPRESSED_PIECE,
        });
  const checked = new EntryCheck(entry);
  // Bytes flow (and may fail) before the reader iterates: its iterator reports the failure then.
  checked.on('error', () => undefined);
  const fail = (e: Error) =>
    checked.destroy(refusal('malformed', `${entry.fileName} in the ZIP is corrupt: ${e.message}`));
  raw.once('error', fail);
  if (method === DEFLATE) {
    const inflate = createInflateRaw({
      chunkSize: INFLATE_CHUNK,
      // zlib's streams hand stream options to Transform; its typings list only zlib's own.
      ...({ readableHighWaterMark: INFLATED_AHEAD } as ZlibOptions),
    });
    inflate.once('error', fail);
    raw.pipe(inflate).pipe(checked);
    checked.once('close', () => inflate.destroy());
  } else raw.pipe(checked);
  checked.once('close', () => raw.destroy());
  return checked;
}

/**
 * The extraction's text as a byte stream, from a ZIP (its one text file) or a plain text file, and
 * the size of the text.
 * Refusals (`malformed`) for archives that cannot be read; the stream itself fails with a refusal
 * when the archive turns out corrupt while it is read.
 */
export async function openExtraction(
  file: string,
  openPlain: (file: string) => Readable,
): Promise<{ stream: Readable; zipped: boolean; name: string; textBytes: number }> {
  if (!(await startsWithZipMagic(file))) {
    const { size } = await stat(file);
    return { stream: openPlain(file), zipped: false, name: file, textBytes: size };
  }
  const zip = await openZip(file);
  try {
    const entry = pickEntry(await fileEntries(zip));
    const stream = await entryStream(file, zip, entry);
    // As the archive announces it: checked against what is inflated (EntryCheck).
    return { stream, zipped: true, name: entry.fileName, textBytes: entry.uncompressedSize };
  } finally {
    // The entry's bytes are read by a stream of their own.
    zip.close();
  }
}

/** Receives one line: bytes [start, end) of `bytes`, without its line break. */
export type LineSink = (bytes: Buffer, start: number, end: number) => void;

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits bytes into lines (LF or CRLF) where they arrived, holding only the unfinished line between
 * chunks. A line longer than `maxLineBytes` is refused: a file without line breaks must not grow
 * memory without bound. Lines that are not valid UTF-8 are passed re-encoded (each bad byte becomes
 * U+FFFD), as decoding the text would have made them; the check costs one scan of each chunk.
 */
export class ByteLines {
  #rest: Buffer | undefined;
  constructor(private readonly maxLineBytes: number) {}

  /** Passes the complete lines ended in this chunk to `sink`. */
  push(chunk: Buffer, sink: LineSink): void {
    let from = 0;
    if (this.#rest) {
      const lf = chunk.indexOf(LF);
      if (lf < 0) {
        this.#rest = this.#checked(Buffer.concat([this.#rest, chunk]));
        return;
      }
      const first = Buffer.concat([this.#rest, chunk.subarray(0, lf)]);
      this.#rest = undefined;
      this.#line(first, 0, first.length, isUtf8(first), sink);
      from = lf + 1;
    }
    const last = chunk.lastIndexOf(LF);
    if (last >= from) {
      const valid = isUtf8(chunk.subarray(from, last));
      for (let start = from; start <= last;) {
        const lf = chunk.indexOf(LF, start);
        this.#line(chunk, start, lf, valid, sink);
        start = lf + 1;
      }
      from = last + 1;
    }
    if (from < chunk.length) this.#rest = this.#checked(Buffer.from(chunk.subarray(from)));
  }

  /** Passes what followed the last line break, if anything: true when there was such a line. */
  end(sink: LineSink): boolean {
    const rest = this.#rest;
    this.#rest = undefined;
    const length = rest && rest.at(-1) === CR ? rest.length - 1 : (rest?.length ?? 0);
    if (!rest || length === 0) return false;
    this.#line(rest, 0, length, isUtf8(rest), sink);
    return true;
  }

  #line(bytes: Buffer, start: number, end: number, valid: boolean, sink: LineSink): void {
    if (end > start && bytes[end - 1] === CR) end--;
    if (end - start > this.maxLineBytes) throw tooLong(this.maxLineBytes);
    if (valid || isUtf8(bytes.subarray(start, end))) {
      sink(bytes, start, end);
      return;
    }
    const text = Buffer.from(bytes.toString('utf8', start, end), 'utf8');
    sink(text, 0, text.length);
  }

  #checked(rest: Buffer): Buffer {
    // A CR may still be followed by its LF: it is not counted against the limit yet.
    if (rest.length > this.maxLineBytes + 1) throw tooLong(this.maxLineBytes);
    return rest;
  }
}

function tooLong(maxLineBytes: number) {
  return refusal('malformed', `a line is longer than ${maxLineBytes} bytes`);
}
