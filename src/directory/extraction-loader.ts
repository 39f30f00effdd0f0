import { createReadStream } from 'node:fs';
import type { Redis } from 'ioredis';
import { isGatewayError } from '../errors/index.js';
import {
  type ColumnMap,
  columnMap,
  decodeValues,
  encodeValues,
  mergeValues,
  parseRow,
} from './extraction-format.js';
import { LineSplitter, openExtraction } from './extraction-input.js';
import { refusal } from './mirror-outcome.js';
import { ENTRY_FIELDS } from './extraction-format.js';
import { PERSON_INDEX_SUFFIX, directoryUnavailable } from './mirror-store.js';

/** Position of the national person id in an entry's values. */
const NATIONAL_ID = ENTRY_FIELDS.indexOf('nationalId');

/**
 * Streams the extraction into a Redis hash (address → compact entry) under a new version key,
 * batch by batch: memory holds one chunk and one batch, whatever the file's size. Repeated
 * addresses are merged (within a batch in memory, across batches against what is already written),
 * and each new address is looked up in the previous version to count what was added and removed.
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
  /** Addresses written per round trip. Default 2,000. */
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

const MAX_LINE_CHARS = 64 * 1024;

class Loader {
  #map: ColumnMap | undefined;
  #batch = new Map<string, string[]>();
  lines = 0;
  entries = 0;
  duplicates = 0;
  conflicts = 0;
  invalid = 0;
  existed = 0;

  constructor(private readonly options: ExtractionLoadOptions) {}

  get batchFull(): boolean {
    return this.#batch.size >= (this.options.batchSize ?? 2000);
  }

  line(text: string): void {
    if (!this.#map) {
      this.#map = columnMap(text);
      return;
    }
    if (text.trim() === '') return;
    this.lines++;
    const row = parseRow(text, this.#map);
    if (!row) {
      this.invalid++;
      return;
    }
    const kept = this.#batch.get(row.address);
    if (!kept) {
      this.#batch.set(row.address, row.values);
      return;
    }
    this.duplicates++;
    if (mergeValues(kept, row.values).conflict) this.conflicts++;
  }

  /** The last line had no line break: a cut-off download unless it is a whole line. */
  lastLine(text: string): void {
    if (this.#map && text.split('|').length !== this.#map.columns)
      throw refusal('malformed', 'the extraction ends in the middle of a line (truncated copy?)');
    this.line(text);
  }

  get sawHeader(): boolean {
    return this.#map !== undefined;
  }

  /**
   * The per-person index (national id → addresses, space-separated) beside the copy: what the portal
   * lists as a person's addresses and where a delegate's `Sender:` may point. Only this loader writes
   * the staged copy, so read-then-write is safe.
   */
  async #indexPersons(byPerson: ReadonlyMap<string, readonly string[]>): Promise<void> {
    if (byPerson.size === 0) return;
    const { redis, target } = this.options;
    const index = `${target}${PERSON_INDEX_SUFFIX}`;
    const persons = [...byPerson.keys()];
    const known = await redis.hmget(index, ...persons);
    const fields = persons.flatMap((p, i) => [p, [known[i], ...byPerson.get(p)!].filter(Boolean).join(' ')]);
    await redis.hset(index, ...fields);
  }

  async flush(): Promise<void> {
    if (this.#batch.size === 0) return;
    const { redis, target, previous } = this.options;
    const addresses = [...this.#batch.keys()];
    const batch = this.#batch;
    this.#batch = new Map();
    try {
      const reads = redis.pipeline().hmget(target, ...addresses);
      if (previous) reads.hmget(previous.key, ...addresses);
      const replies = (await reads.exec()) ?? [];
      for (const [err] of replies) if (err) throw err;
      const written = replies[0]?.[1] as (string | null)[];
      const before = (replies[1]?.[1] as (string | null)[] | undefined) ?? [];
      const fields: string[] = [];
      const byPerson = new Map<string, string[]>();
      addresses.forEach((address, i) => {
        const values = batch.get(address)!;
        const stored = written[i];
        if (stored) {
          // Seen in an earlier batch: the earlier line wins, this one only fills its gaps.
          const kept = decodeValues(stored);
          this.duplicates++;
          if (mergeValues(kept, values).conflict) this.conflicts++;
          fields.push(address, encodeValues(kept));
          return;
        }
        this.entries++;
        if (before[i]) this.existed++;
        fields.push(address, encodeValues(values));
        const person = (values[NATIONAL_ID] ?? '').trim().toUpperCase();
        if (person !== '') byPerson.set(person, [...(byPerson.get(person) ?? []), address]);
      });
      await redis.hset(target, ...fields);
      await this.#indexPersons(byPerson);
    } catch (err) {
      throw directoryUnavailable(err);
    }
  }
}

async function nextChunk(iterator: AsyncIterator<Buffer>): Promise<IteratorResult<Buffer>> {
  try {
    return await iterator.next();
  } catch (err) {
    if (isGatewayError(err)) throw err;
    throw refusal('malformed', `the extraction cannot be read: ${(err as Error).message}`);
  }
}

export async function loadExtraction(options: ExtractionLoadOptions): Promise<ExtractionLoadResult> {
  const { stream, zipped } = await openExtraction(options.file, (f) =>
    createReadStream(f, { highWaterMark: 1024 * 1024 }),
  );
  const loader = new Loader(options);
  const splitter = new LineSplitter(MAX_LINE_CHARS);
  const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  try {
    for (let r = await nextChunk(iterator); !r.done; r = await nextChunk(iterator)) {
      for (const line of splitter.push(r.value)) loader.line(line);
      if (loader.batchFull) await loader.flush();
    }
    const last = splitter.end();
    if (last !== undefined) loader.lastLine(last);
    await loader.flush();
  } finally {
    stream.destroy();
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
