/**
 * The strings a load has already met, as 64-bit fingerprints in an open-addressing table of two
 * typed arrays (8 bytes a slot, no object per entry): a 536,000-line extraction needs 8 MiB where a
 * Set of its addresses would hold ~60 MiB of strings. `add` answers "certainly new" or "maybe
 * seen"; a "maybe" (a real repeat, or a 1-in-2^64 fingerprint collision) is checked against Redis,
 * so the answer that matters stays exact.
 */
export class SeenStrings {
  #lo = new Uint32Array(1 << 16);
  #hi = new Uint32Array(1 << 16);
  #size = 0;

  /** Records `s`; true when it (or a string with the same fingerprint) was recorded before. */
  add(s: string): boolean {
    // Two independent 32-bit hashes (FNV-1a, and a multiply-xorshift one), finalised (fmix32).
    let a = 0x811c9dc5;
    let b = 0x9747b28c ^ s.length;
    for (let i = 0; i < s.length; i++) {
      const c = s.charCodeAt(i);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 15;
    }
    const lo = fmix(a) >>> 0;
    const hi = (fmix(b) | 1) >>> 0; // never 0: an empty slot is hi = 0
    const mask = this.#hi.length - 1;
    let slot = lo & mask;
    for (;;) {
      const h = this.#hi[slot]!;
      if (h === 0) break;
      if (h === hi && this.#lo[slot] === lo) return true;
      slot = (slot + 1) & mask;
    }
    this.#lo[slot] = lo;
    this.#hi[slot] = hi;
    if (++this.#size * 2 > this.#hi.length) this.#grow();
    return false;
  }

  get size(): number {
    return this.#size;
  }

  #grow(): void {
    const [oldLo, oldHi] = [this.#lo, this.#hi];
    this.#lo = new Uint32Array(oldLo.length * 2);
    this.#hi = new Uint32Array(oldHi.length * 2);
    const mask = this.#hi.length - 1;
    for (let i = 0; i < oldHi.length; i++) {
      const hi = oldHi[i]!;
      if (hi === 0) continue;
      let slot = oldLo[i]! & mask;
      while (this.#hi[slot] !== 0) slot = (slot + 1) & mask;
      this.#lo[slot] = oldLo[i]!;
      this.#hi[slot] = hi;
    }
  }
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
