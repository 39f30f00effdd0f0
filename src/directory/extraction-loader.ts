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
import { SeenStrings } from './extraction-seen.js';
import { refusal } from './mirror-outcome.js';
import { ENTRY_FIELDS } from './extraction-format.js';
import { PERSON_INDEX_SUFFIX, Script, directoryUnavailable } from './mirror-store.js';

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
  #inFlight: { batch: Map<string, string[]>; reply: Promise<Settled<(string | number)[]>> } | undefined;
  #merges: Promise<Settled<void>> | undefined;
  readonly #addresses = new SeenStrings();
  readonly #persons = new SeenStrings();
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
   * Sends the batch and leaves it in flight while the next one is parsed; the batch before it is
   * settled first, so its merges reach Redis before the next batch is looked at. Addresses and
   * persons never met before in this load (SeenStrings) are written by plain bulk HSETs; the few
   * others (repeats, persons with several addresses) go through STORE, in line order.
   */
  async flush(): Promise<void> {
    await this.settle();
    if (this.#batch.size === 0) return;
    const { redis, target, previous } = this.options;
    const index = `${target}${PERSON_INDEX_SUFFIX}`;
    const batch = this.#batch;
    this.#batch = new Map();
    const data: string[] = [];
    const persons: string[] = [];
    let fresh = '';
    let checked = '';
    for (const [address, values] of batch) {
      const person = (values[NATIONAL_ID] ?? '').trim().toUpperCase();
      const encoded = encodeValues(values);
      const personSeen = person !== '' && this.#persons.add(person);
      if (this.#addresses.add(address)) {
        checked += `c\n${address}\n${encoded}\n${person}\n`;
        continue;
      }
      data.push(address, encoded);
      fresh += `${address}\n`;
      if (personSeen) checked += `a\n${address}\n\n${person}\n`;
      else if (person !== '') persons.push(person, address);
    }
    // One connection runs commands in order: the plain writes land before STORE reads them.
    const replies: Promise<unknown>[] = [];
    if (data.length > 0) replies.push(redis.hset(target, ...data));
    if (persons.length > 0) replies.push(redis.hset(index, ...persons));
    const storeAt = replies.length;
    if (checked !== '')
      replies.push(
        STORE.run(redis, [target, index, previous?.key ?? target], [previous ? '1' : '0', checked]),
      );
    const countAt = replies.length;
    if (previous && fresh !== '') replies.push(COUNT_KNOWN.run(redis, [previous.key], [fresh]));
    const reply = Promise.all(replies).then((all) => {
      const stored = (checked === '' ? [0] : all[storeAt]) as (string | number)[];
      const known = countAt < all.length ? Number(all[countAt]) : 0;
      return [Number(stored[0]) + known, ...stored.slice(1)];
    });
    this.#inFlight = { batch, reply: settled(reply) };
  }

  /** Waits for the batch in flight, counts it, and sends the merges of its repeated addresses. */
  async settle(): Promise<void> {
    const merges = this.#merges;
    this.#merges = undefined;
    if (merges) {
      const written = await merges;
      if (!written.ok) throw directoryUnavailable(written.error);
    }
    const pending = this.#inFlight;
    this.#inFlight = undefined;
    if (!pending) return;
    const replied = await pending.reply;
    if (!replied.ok) throw directoryUnavailable(replied.error);
    const reply = replied.value;
    this.existed += Number(reply[0]);
    const fields: string[] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) {
      // Seen in an earlier batch: the earlier line wins, this one only fills its gaps.
      const address = String(reply[i]);
      const kept = decodeValues(String(reply[i + 1]));
      this.duplicates++;
      if (mergeValues(kept, pending.batch.get(address)!).conflict) this.conflicts++;
      fields.push(address, encodeValues(kept));
    }
    this.entries += pending.batch.size - fields.length / 2;
    // Not awaited: commands on one connection run in order, so these writes land before the next
    // batch's script; their outcome is checked at the next settle.
    if (fields.length > 0)
      this.#merges = settled(this.options.redis.hset(this.options.target, ...fields).then(() => undefined));
  }

  /** Nothing left in flight (after a failure, so that no reply is left unobserved). */
  async abandon(): Promise<void> {
    await this.#merges;
    await this.#inFlight?.reply;
  }
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

/** A promise that never rejects: a reply awaited later must not count as an unhandled rejection. */
function settled<T>(promise: Promise<T>): Promise<Settled<T>> {
  return promise.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
}

/**
 * The lines a plain write cannot take. KEYS[1] the new copy, KEYS[2] its per-person index, KEYS[3]
 * the copy in service (when ARGV[1] is '1'). ARGV[2] records `kind\naddress\nencoded\nperson\n`
 * (no value holds a line break: they come from one line each), in line order:
 * - `c`: an address maybe met before: written if new (then looked up in the copy in service and
 *   appended to its person's addresses), else returned with its stored value for the caller to merge;
 * - `a`: a new address already written whose person already has addresses: appended to them.
 * The index maps a national id to its addresses, space-separated: what the portal lists as a
 * person's addresses and where a delegate's `Sender:` may point.
 * Returns {existed, address, stored, address, stored, ...}.
 */
const STORE = new Script(`
local existed, out = 0, {0}
local diff = ARGV[1] == '1'
for k, a, e, p in string.gmatch(ARGV[2], '([ac])\\n([^\\n]*)\\n([^\\n]*)\\n([^\\n]*)\\n') do
  local new = true
  if k == 'c' then
    if redis.call('HSETNX', KEYS[1], a, e) == 1 then
      if diff and redis.call('HEXISTS', KEYS[3], a) == 1 then existed = existed + 1 end
    else
      new = false
      out[#out + 1] = a
      out[#out + 1] = redis.call('HGET', KEYS[1], a)
    end
  end
  if new and p ~= '' then
    local known = redis.call('HGET', KEYS[2], p)
    redis.call('HSET', KEYS[2], p, known and (known .. ' ' .. a) or a)
  end
end
out[1] = existed
return out
`);

/**
 * KEYS[1] the copy in service. ARGV[1] addresses, each followed by a line break. How many of them
 * it lists (read by slices of 1,000: the values stay in Redis).
 */
const COUNT_KNOWN = new Script(`
local addrs, n, known = {}, 0, 0
for a in string.gmatch(ARGV[1], '([^\\n]*)\\n') do
  n = n + 1
  addrs[n] = a
end
for i = 1, n, 1000 do
  local found = redis.call('HMGET', KEYS[1], unpack(addrs, i, math.min(i + 999, n)))
  for j = 1, #found do if found[j] then known = known + 1 end end
end
return known
`);

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
    await loader.settle();
  } catch (err) {
    await loader.abandon();
    throw err;
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
