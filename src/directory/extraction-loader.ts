import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Redis } from 'ioredis';
import { isGatewayError } from '../errors/index.js';
import { type Digest, DigestSet, digestBytes, digestOf } from './extraction-digests.js';
import { ENTRY_FIELDS, columnMap, decodeValues, encodeValues, mergeValues } from './extraction-format.js';
import { ByteLines, openExtraction } from './extraction-input.js';
import { RowReader } from './extraction-rows.js';
import { CommandPipe, HashWriter } from './extraction-writer.js';
import { refusal } from './mirror-outcome.js';
import { DIGESTS_SUFFIX, PERSON_INDEX_SUFFIX, directoryUnavailable } from './mirror-store.js';

/** Position of the national person id in an entry's values. */
const NATIONAL_ID = ENTRY_FIELDS.indexOf('nationalId');

/**
 * Streams the extraction into a Redis hash (address → compact entry) under a new version key, with
 * the per-person index and the addresses' digests beside it. Memory holds one chunk, the command
 * being built and the unanswered ones (a few MiB), and two digest sets (8 bytes an address).
 *
 * - Each line is read from its bytes and its entry written by a pipelined HSET, blind: an address
 *   whose digest was not seen before cannot have been written yet.
 * - A line whose address digest was seen is put aside; in batches, the entries it repeats are read
 *   back, merged (the first line wins, later ones fill its gaps) and written again. Only these
 *   lines (~2 % of the national file) cost a read.
 * - A person id seen before has the address appended to its list by a script, in batches.
 * - Differences are counted against the previous copy's digests, read in one GET.
 * The copy is invisible until mirror-refresh switches the version: readers never see a part of it.
 */
export interface ExtractionLoadOptions {
  readonly redis: Redis;
  readonly file: string;
  /** Hash receiving the new copy (must not exist yet). */
  readonly target: string;
  /** Hash of the copy in service, to count differences. */
  readonly previous?: { readonly key: string; readonly entries: number };
  /** Refuse the copy when more than this share of data lines is unusable. */
  readonly maxInvalidShare: number;
  /**
   * Most fields per HSET, and most repeated lines or person ids put aside before they are merged.
   * Default: an HSET holds 1 MiB, 5,000 lines are put aside. (Small values let tests cross batches.)
   */
  readonly batchSize?: number;
}

export interface ExtractionLoadResult {
  /** Distinct addresses (the copy's entries). */
  readonly entries: number;
  /** Data lines read (header excluded, blank lines excluded). */
  readonly lines: number;
  /** Lines whose address was already seen, merged into the first. */
  readonly duplicates: number;
  /** Merged lines that disagreed with the first on a field both had. */
  readonly conflicts: number;
  /** Lines that could not be used (column count, address, type). */
  readonly invalid: number;
  readonly added: number;
  readonly removed: number;
  readonly zipped: boolean;
}

const MAX_LINE_BYTES = 256 * 1024;
const HSET_BYTES = 1024 * 1024;
const MAX_BYTES_IN_FLIGHT = 8 * 1024 * 1024;
const DIGEST_PIECE = 1024 * 1024;
const PUT_ASIDE = 5_000;
/**
 * Addresses expected per byte of text when no previous copy tells (the national file has 170-240
 * bytes a line), and at most: the digest tables are sized once rather than grown four times on the
 * way (each growth rehashes every digest, two tables at once). An archive announcing more text
 * than it holds gets tables of this size, no more.
 */
const TEXT_BYTES_PER_ENTRY = 200;
const MOST_EXPECTED_ENTRIES = 700_000;

/**
 * KEYS[1] person index. ARGV: national id, address, ... Appends each address to its person's list
 * (space-separated), in order: one call for a batch of people already seen in the file.
 */
const APPEND_PERSONS = `
for i = 1, #ARGV - 1, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if cur then cur = cur .. ' ' .. ARGV[i + 1] else cur = ARGV[i + 1] end
  redis.call('HSET', KEYS[1], ARGV[i], cur)
end
return 0
`;

class Loader {
  #rows: RowReader | undefined;
  readonly #pipe: CommandPipe;
  readonly #data: HashWriter;
  readonly #persons: HashWriter;
  readonly #personKey: string;
  readonly #putAside: number;
  /** Digests of the addresses written, of the person ids indexed, of the previous copy's addresses. */
  #seen: DigestSet;
  #seenPersons: DigestSet;
  #previous: DigestSet | undefined;
  readonly #digest: Digest = { hi: 0, lo: 0 };
  /** Lines whose address digest was seen: address and stored encoding, in file order. */
  #repeats: [string, string][] = [];
  /** National id, address, ... of people seen before, in file order. */
  #appends: string[] = [];
  lines = 0;
  entries = 0;
  duplicates = 0;
  conflicts = 0;
  invalid = 0;
  existed = 0;

  constructor(
    private readonly options: ExtractionLoadOptions,
    readonly redis: Redis,
    textBytes: number,
  ) {
    // This copy has about as many addresses and people as the previous one, or as its text says.
    const expected =
      options.previous?.entries ??
      Math.min(MOST_EXPECTED_ENTRIES, Math.ceil(textBytes / TEXT_BYTES_PER_ENTRY));
    this.#seen = new DigestSet(expected);
    this.#seenPersons = new DigestSet(expected);
    this.#pipe = new CommandPipe(redis, MAX_BYTES_IN_FLIGHT);
    const fields = options.batchSize ?? Number.POSITIVE_INFINITY;
    this.#data = new HashWriter(this.#pipe, options.target, fields, HSET_BYTES);
    this.#personKey = `${options.target}${PERSON_INDEX_SUFFIX}`;
    this.#persons = new HashWriter(this.#pipe, this.#personKey, fields, HSET_BYTES / 4);
    this.#putAside = options.batchSize ?? PUT_ASIDE;
  }

  get sawHeader(): boolean {
    return this.#rows !== undefined;
  }

  /**
   * The previous copy's digests, read in pieces of 1 MiB (not one GET: its reply would be held twice
   * while parsed); a copy written before digests were kept beside it is read by HSCAN.
   */
  async readPrevious(): Promise<void> {
    const { previous } = this.options;
    if (!previous) return;
    const key = `${previous.key}${DIGESTS_SUFFIX}`;
    const length = await this.redis.strlen(key);
    const set = new DigestSet(Math.max(length / 8, previous.entries));
    let read = length > 0 && length % 8 === 0;
    for (let at = 0; read && at < length; at += DIGEST_PIECE)
      read = set.addAll(await this.redis.getrangeBuffer(key, at, Math.min(length, at + DIGEST_PIECE) - 1));
    if (!read) {
      let cursor = '0';
      do {
        const [next, pairs] = await this.redis.hscan(previous.key, cursor, 'COUNT', 5000);
        for (let i = 0; i < pairs.length; i += 2) set.add(digestOf(pairs[i]!, this.#digest));
        cursor = next;
      } while (cursor !== '0');
    }
    this.#previous = set;
  }

  readonly line = (bytes: Buffer, start: number, end: number): void => {
    const rows = this.#rows;
    if (!rows) {
      this.#rows = new RowReader(columnMap(bytes.toString('utf8', start, end)), MAX_LINE_BYTES);
      return;
    }
    const outcome = rows.scan(bytes, start, end);
    if (outcome === 'blank') return;
    this.lines++;
    if (outcome === 'invalid') {
      this.invalid++;
      return;
    }
    const address = rows.addressBytes;
    if (!this.#seen.add(digestBytes(address, 0, rows.addressLength, this.#digest))) {
      const value = rows.value;
      this.#repeats.push([rows.address, value.toString('utf8', 0, rows.writeValue(value, 0))]);
      return;
    }
    this.#counted(this.#digest);
    // The value is written where the HSET carries it, not copied there.
    const data = this.#data;
    const at = data.beginEntry(address, 0, rows.addressLength, rows.valueBound);
    data.endEntry(rows.writeValue(data.buffer, at));
    const person = rows.personBytes;
    if (rows.personLength === 0) return;
    if (this.#seenPersons.add(digestBytes(person, 0, rows.personLength, this.#digest)))
      this.#persons.add(person, 0, rows.personLength, address, 0, rows.addressLength);
    else this.#appends.push(rows.nationalId, rows.address);
  };

  /** The last line had no line break: a cut-off download unless it is a whole line. */
  readonly lastLine = (bytes: Buffer, start: number, end: number): void => {
    if (this.#rows) {
      let cells = 1;
      for (let i = start; i < end; i++) if (bytes[i] === 0x7c) cells++;
      if (cells !== this.#rows.columns)
        throw refusal('malformed', 'the extraction ends in the middle of a line (truncated copy?)');
    }
    this.line(bytes, start, end);
  };

  /** After each chunk: merges what was put aside when there is enough, waits for Redis when behind. */
  async pace(): Promise<void> {
    if (this.#repeats.length >= this.#putAside) await this.#mergeRepeats();
    if (this.#appends.length >= this.#putAside * 2) this.#sendAppends();
    await this.#pipe.drain();
  }

  async finish(): Promise<void> {
    await this.#mergeRepeats();
    this.#sendAppends();
    this.#data.flush();
    this.#persons.flush();
    const digests = this.#seen.toBuffer();
    this.#pipe.track(this.redis.set(`${this.options.target}${DIGESTS_SUFFIX}`, digests), digests.length);
    await this.#pipe.drain(0);
  }

  /** A new entry: counted, and compared with the previous copy. */
  #counted(digest: Digest): void {
    this.entries++;
    if (this.#previous?.has(digest)) this.existed++;
  }

  #addPerson(nationalId: string, address: string): void {
    if (this.#seenPersons.add(digestOf(nationalId, this.#digest))) this.#persons.addText(nationalId, address);
    else this.#appends.push(nationalId, address);
  }

  /** Appends the addresses of people seen before, after their first address was sent. */
  #sendAppends(): void {
    if (this.#appends.length === 0) return;
    this.#persons.flush();
    const appends = this.#appends;
    this.#appends = [];
    const pairs = Math.max(1, Math.min(1000, this.#putAside));
    for (let i = 0; i < appends.length; i += pairs * 2) {
      const args = appends.slice(i, i + pairs * 2);
      const bytes = args.reduce((n, a) => n + a.length, 0);
      this.#pipe.track(this.redis.eval(APPEND_PERSONS, 1, this.#personKey, ...args), bytes);
    }
  }

  /**
   * Merges the lines put aside into the entries they repeat, in file order. The entries are read
   * after every earlier write was sent on this connection, so they are what was written. An address
   * not found only shared its digest with another: this line is its first.
   */
  async #mergeRepeats(): Promise<void> {
    if (this.#repeats.length === 0) return;
    const repeats = this.#repeats;
    this.#repeats = [];
    this.#data.flush();
    const addresses = [...new Set(repeats.map(([address]) => address))];
    const reply = this.redis.hmget(this.options.target, ...addresses);
    this.#pipe.track(reply, 0);
    const stored = await reply;
    const kept = new Map<string, string[]>();
    addresses.forEach((address, i) => {
      const value = stored[i];
      if (value) kept.set(address, decodeValues(value));
    });
    for (const [address, encoded] of repeats) {
      const values = decodeValues(encoded);
      const entry = kept.get(address);
      if (!entry) {
        kept.set(address, values);
        this.#counted(digestOf(address, this.#digest));
        const person = values[NATIONAL_ID]!.toUpperCase();
        if (person !== '') this.#addPerson(person, address);
        continue;
      }
      this.duplicates++;
      const hadPerson = entry[NATIONAL_ID] !== '';
      if (mergeValues(entry, values).conflict) this.conflicts++;
      // A repeat that fills the person id puts the address in that person's list.
      if (!hadPerson && entry[NATIONAL_ID] !== '')
        this.#addPerson(entry[NATIONAL_ID]!.toUpperCase(), address);
    }
    const fields = [...kept].flatMap(([address, values]) => [address, encodeValues(values)]);
    const bytes = fields.reduce((n, f) => n + f.length, 0);
    this.#pipe.track(this.redis.hset(this.options.target, ...fields), bytes);
  }
}

/** A failure to read the copy refuses it; refusals and Redis failures stay what they are. */
async function reading(work: Promise<void>): Promise<void> {
  try {
    await work;
  } catch (err) {
    if (isGatewayError(err)) throw err;
    throw refusal('malformed', `the extraction cannot be read: ${(err as Error).message}`);
  }
}

/** Redis failures become DIRECTORY_UNAVAILABLE; refusals of the copy stay what they are. */
async function storing<T>(work: Promise<T>): Promise<T> {
  try {
    return await work;
  } catch (err) {
    throw directoryUnavailable(err);
  }
}

export async function loadExtraction(options: ExtractionLoadOptions): Promise<ExtractionLoadResult> {
  const { stream, zipped, textBytes } = await openExtraction(options.file, (f) =>
    createReadStream(f, { highWaterMark: 1024 * 1024 }),
  );
  // A connection of its own: megabytes of pipelined writes must not queue the gateway's lookups.
  const redis = options.redis.duplicate();
  redis.on('error', () => undefined); // failures surface as the commands' rejections
  const loader = new Loader(options, redis, textBytes);
  const lines = new ByteLines(MAX_LINE_BYTES);
  try {
    await storing(loader.readPrevious());
    await reading(
      pipeline(
        stream,
        new Writable({
          // Each chunk as it arrived: Readable's iterator hands over everything buffered joined in one
          // new buffer (a copy of the whole text, 3 % of the load's CPU profile).
          write(chunk: Buffer, _encoding, done) {
            try {
              lines.push(chunk, loader.line);
            } catch (err) {
              done(err as Error);
              return;
            }
            storing(loader.pace()).then(() => done(), done);
          },
        }),
      ),
    );
    lines.end(loader.lastLine);
    await storing(loader.finish());
  } finally {
    stream.destroy();
    await redis.quit().catch(() => redis.disconnect());
  }
  if (!loader.sawHeader) throw refusal('empty', 'the extraction is empty');
  if (loader.entries === 0) throw refusal('empty', 'the extraction lists no usable address');
  const used = loader.lines;
  if (used > 0 && loader.invalid / used > options.maxInvalidShare)
    throw refusal(
      'invalid_lines',
      `${loader.invalid} of ${used} lines cannot be used (over directory.extraction.maxInvalidShare ${options.maxInvalidShare})`,
      { invalid: loader.invalid, lines: used },
    );
  const previousEntries = options.previous?.entries ?? 0;
  return {
    entries: loader.entries,
    lines: loader.lines,
    duplicates: loader.duplicates,
    conflicts: loader.conflicts,
    invalid: loader.invalid,
    added: loader.entries - loader.existed,
    removed: previousEntries - loader.existed,
    zipped,
  };
}
