import type { Redis } from 'ioredis';
import { normalizeAddress } from '../shared/index.js';
import { type DirectoryEntry, decodeValues, entryFrom } from './extraction-format.js';
import { COUNT, LOOKUP, LOOKUP_PERSON, MirrorKeys, directoryUnavailable } from './mirror-store.js';

/** The name of the extraction mirror (metrics label, CLI argument). */
export const EXTRACTION_MIRROR = 'extraction';

/** Addresses per script call: Lua's unpack() has a limit on its arguments. */
const CHUNK = 1000;

export interface DirectoryLookup {
  /** Version of the extraction the answer comes from; undefined when none is in service yet. */
  readonly version: number | undefined;
  /** Published entries found, by normalised address (lower case, ASCII domain). */
  readonly entries: ReadonlyMap<string, DirectoryEntry>;
}

/**
 * Lookups in the mirrored BAL extraction: address → published entry (type, national person id,
 * structure), used to check the owner of a new PER mailbox and to tell whether a recipient is a
 * known MSSanté address. Each call reads the version in service and its entries in one atomic
 * script, so a refresh switching versions never makes a lookup miss.
 */
export class NationalDirectory {
  readonly #redis: Redis;
  readonly #keys: MirrorKeys;

  constructor(options: { redis: Redis; prefix: string }) {
    this.#redis = options.redis;
    this.#keys = new MirrorKeys(options.prefix);
  }

  /** Entries of the given addresses that the directory publishes (one round trip per 1,000). */
  async lookup(addresses: Iterable<string>): Promise<DirectoryLookup> {
    const wanted = [...new Set([...addresses].flatMap((a) => normalizeAddress(a) ?? []))];
    const entries = new Map<string, DirectoryEntry>();
    let version: number | undefined;
    for (let i = 0; i < wanted.length; i += CHUNK) {
      const chunk = wanted.slice(i, i + CHUNK);
      let reply: (string | null)[];
      try {
        reply = (await LOOKUP.run(
          this.#redis,
          [this.#keys.state(EXTRACTION_MIRROR)],
          [this.#keys.dataPrefix(EXTRACTION_MIRROR), ...chunk],
        )) as (string | null)[];
      } catch (err) {
        throw directoryUnavailable(err);
      }
      if (reply.length === 0) return { version: undefined, entries };
      version = Number(reply[0]);
      chunk.forEach((address, j) => {
        const stored = reply[j + 1];
        if (stored) entries.set(address, entryFrom(address, decodeValues(stored)));
      });
    }
    if (version === undefined) version = (await this.size())?.version;
    return { version, entries };
  }

  /**
   * Every address the extraction lists for a national person id (8+RPPS or 0+ADELI), with its entry:
   * a person's MSSanté addresses at every operator. Undefined when no extraction is in service.
   */
  async addressesOf(nationalId: string): Promise<DirectoryEntry[] | undefined> {
    let reply: string[];
    try {
      reply = (await LOOKUP_PERSON.run(
        this.#redis,
        [this.#keys.state(EXTRACTION_MIRROR)],
        [this.#keys.dataPrefix(EXTRACTION_MIRROR), nationalId.trim().toUpperCase()],
      )) as string[];
    } catch (err) {
      throw directoryUnavailable(err);
    }
    if (reply.length === 0) return undefined;
    const entries: DirectoryEntry[] = [];
    for (let i = 1; i + 1 < reply.length; i += 2) {
      const [address, stored] = [reply[i]!, reply[i + 1]!];
      if (stored !== '') entries.push(entryFrom(address, decodeValues(stored)));
    }
    return entries;
  }

  /** The published entry of one address, or undefined. */
  async entryOf(address: string): Promise<DirectoryEntry | undefined> {
    const key = normalizeAddress(address);
    return key === undefined ? undefined : (await this.lookup([key])).entries.get(key);
  }

  /** True when the national directory publishes this address. */
  async isKnown(address: string): Promise<boolean> {
    return (await this.entryOf(address)) !== undefined;
  }

  /** The given addresses (normalised) that the national directory publishes. */
  async knownAmong(addresses: Iterable<string>): Promise<Set<string>> {
    return new Set((await this.lookup(addresses)).entries.keys());
  }

  /** Version and number of addresses in service, or undefined when no extraction is in service. */
  async size(): Promise<{ version: number; entries: number } | undefined> {
    try {
      const reply = (await COUNT.run(
        this.#redis,
        [this.#keys.state(EXTRACTION_MIRROR)],
        [this.#keys.dataPrefix(EXTRACTION_MIRROR)],
      )) as [string, number] | [];
      return reply.length === 0 ? undefined : { version: Number(reply[0]), entries: Number(reply[1]) };
    } catch (err) {
      throw directoryUnavailable(err);
    }
  }
}
