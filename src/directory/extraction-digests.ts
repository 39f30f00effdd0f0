/**
 * 64-bit digests of strings (addresses, national person ids) in an open-addressing table of typed
 * arrays: 8 bytes a key instead of a string and a Map slot, so that a load can remember every
 * address it wrote (536,000 of them in ~8 MiB) and the previous copy's addresses without holding
 * either as JavaScript strings.
 *
 * A digest is not a proof: two different strings may share one (about one chance in 10^7 for the
 * national file). Callers use a hit as "maybe seen" and confirm against Redis where it matters
 * (repeated addresses); counts of differences (added, removed) may be off by such a collision.
 */

/** The two 32-bit halves of a digest, returned through a reused pair (no object per call). */
export interface Digest {
  hi: number;
  lo: number;
}

/** MurmurHash3's finaliser: every input bit reaches every output bit. */
function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

/** Two differently seeded multiplicative hashes of bytes [start, end), each finalised. */
export function digestBytes(bytes: Uint8Array, start: number, end: number, out: Digest): Digest {
  let a = 0x811c9dc5;
  let b = 0x9747b28c;
  for (let i = start; i < end; i++) {
    const c = bytes[i]!;
    a = Math.imul(a ^ c, 0x01000193);
    b = Math.imul(b ^ c, 0x5bd1e995);
    b ^= b >>> 13;
  }
  return finish(a, b, end - start, out);
}

/** The digest of the text's UTF-8 bytes (what digestBytes gives for them). */
export function digestOf(text: string, out: Digest): Digest {
  const bytes = Buffer.from(text, 'utf8');
  return digestBytes(bytes, 0, bytes.length, out);
}

function finish(a: number, b: number, length: number, out: Digest): Digest {
  out.hi = fmix32(a ^ length);
  out.lo = fmix32(b ^ Math.imul(length, 0x27d4eb2d));
  // (0, 0) marks an empty slot.
  if (out.hi === 0 && out.lo === 0) out.lo = 1;
  return out;
}

const MAX_LOAD = 0.7;

export class DigestSet {
  /** hi, lo of each slot; (0, 0) when empty. */
  #slots: Int32Array;
  #mask: number;
  #size = 0;

  constructor(expected = 1 << 15) {
    let capacity = 1 << 10;
    while (capacity * MAX_LOAD < expected) capacity *= 2;
    this.#slots = new Int32Array(capacity * 2);
    this.#mask = capacity - 1;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds the digest; true when it was not there yet. */
  add(d: Digest): boolean {
    if (this.#size + 1 > (this.#mask + 1) * MAX_LOAD) this.#grow();
    return this.#insert(d.hi | 0, d.lo | 0);
  }

  has(d: Digest): boolean {
    const slots = this.#slots;
    const hi = d.hi | 0;
    const lo = d.lo | 0;
    for (let i = lo & this.#mask; ; i = (i + 1) & this.#mask) {
      const h = slots[i * 2]!;
      const l = slots[i * 2 + 1]!;
      if (h === hi && l === lo) return true;
      if (h === 0 && l === 0) return false;
    }
  }

  #insert(hi: number, lo: number): boolean {
    const slots = this.#slots;
    for (let i = lo & this.#mask; ; i = (i + 1) & this.#mask) {
      const h = slots[i * 2]!;
      const l = slots[i * 2 + 1]!;
      if (h === hi && l === lo) return false;
      if (h === 0 && l === 0) {
        slots[i * 2] = hi;
        slots[i * 2 + 1] = lo;
        this.#size++;
        return true;
      }
    }
  }

  #grow(): void {
    const old = this.#slots;
    this.#slots = new Int32Array(old.length * 2);
    this.#mask = old.length - 1;
    this.#size = 0;
    for (let i = 0; i < old.length; i += 2) {
      if (old[i] !== 0 || old[i + 1] !== 0) this.#insert(old[i]!, old[i + 1]!);
    }
  }

  /** The digests, 8 bytes each (hi then lo, little-endian), in no particular order. */
  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.#size * 8);
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    let at = 0;
    const slots = this.#slots;
    for (let i = 0; i < slots.length; i += 2) {
      const hi = slots[i]!;
      const lo = slots[i + 1]!;
      if (hi === 0 && lo === 0) continue;
      view.setInt32(at, hi, true);
      view.setInt32(at + 4, lo, true);
      at += 8;
    }
    return out;
  }

  /** Adds digests as toBuffer() wrote them; false when the bytes cannot be such digests. */
  addAll(bytes: Buffer): boolean {
    if (bytes.length % 8 !== 0) return false;
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const d: Digest = { hi: 0, lo: 0 };
    for (let at = 0; at < bytes.length; at += 8) {
      d.hi = view.getInt32(at, true);
      d.lo = view.getInt32(at + 4, true);
      if (d.hi === 0 && d.lo === 0) return false;
      this.add(d);
    }
    return true;
  }

  /** The set toBuffer() wrote; undefined when the bytes cannot be one (a foreign or cut value). */
  static fromBuffer(bytes: Buffer): DigestSet | undefined {
    const set = new DigestSet(bytes.length / 8);
    return set.addAll(bytes) ? set : undefined;
  }
}
