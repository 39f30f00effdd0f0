import { describe, expect, it } from 'vitest';
import { HandOffSlots } from '../../src/delivery/handoff-slots.js';
import { HandOffWaitList } from '../../src/delivery/handoff-wait-list.js';
import { LOCAL_DESTINATION } from '../../src/delivery/index.js';

const slotLimits = { local: 1, relay: 2, relayPerDestination: 1, relayEnabled: true };

function served(list: HandOffWaitList<string>, slots: HandOffSlots): string[] {
  return list.serve((d) => slots.take(d)).map((s) => s.item);
}

describe('hand-off wait list', () => {
  it('is bounded by count and by the bytes referred to; past either nothing is added', () => {
    const list = new HandOffWaitList<string>({ entries: 2, bytes: 100 });
    expect(list.push('a~local', LOCAL_DESTINATION, 'a', 60)).toBe(true);
    expect(list.push('b~local', LOCAL_DESTINATION, 'b', 50)).toBe(false); // 110 bytes
    expect(list.push('c~local', LOCAL_DESTINATION, 'c', 40)).toBe(true);
    expect(list.push('d~local', LOCAL_DESTINATION, 'd', 0)).toBe(false); // 3 entries
    expect(list.size).toBe(2);
    // What leaves makes room again.
    expect(list.delete('a~local')).toBe('a');
    expect(list.push('b~local', LOCAL_DESTINATION, 'b', 50)).toBe(true);
    expect(list.clear().map((e) => e.item)).toEqual(['c', 'b']);
    expect(list.size).toBe(0);
  });

  it('serves oldest first, per destination as its slots allow, without one blocked domain holding up others', () => {
    const slots = new HandOffSlots(slotLimits);
    const list = new HandOffWaitList<string>({ entries: 100, bytes: 1e9 });
    const localBusy = slots.take(LOCAL_DESTINATION)!;
    const peerBusy = slots.take('peer.test')!;
    list.push('1~peer.test', 'peer.test', '1', 1);
    list.push('2~local', LOCAL_DESTINATION, '2', 1);
    list.push('3~peer.test', 'peer.test', '3', 1);
    list.push('4~other.test', 'other.test', '4', 1);
    list.push('5~local', LOCAL_DESTINATION, '5', 1);
    expect(list.counts((d) => d === LOCAL_DESTINATION)).toEqual({ local: 2, relay: 3 });
    // peer.test is at its limit and local is full: other.test goes, ahead of older entries.
    expect(served(list, slots)).toEqual(['4']);
    expect(list.waiting('other.test')).toBe(false);
    localBusy();
    expect(served(list, slots)).toEqual(['2']);
    peerBusy();
    // The relay concurrency (2) is taken by other.test and 1: 3 waits.
    expect(served(list, slots)).toEqual(['1']);
    expect(list.waiting('peer.test')).toBe(true);
    expect(list.size).toBe(2);
  });

  it('skips an entry that was deleted while waiting', () => {
    const slots = new HandOffSlots(slotLimits);
    const list = new HandOffWaitList<string>({ entries: 100, bytes: 1e9 });
    const busy = slots.take(LOCAL_DESTINATION)!;
    list.push('1~local', LOCAL_DESTINATION, '1', 1);
    list.push('2~local', LOCAL_DESTINATION, '2', 1);
    expect(list.has('1~local')).toBe(true);
    expect(list.delete('1~local')).toBe('1');
    expect(list.delete('1~local')).toBeUndefined();
    busy();
    expect(served(list, slots)).toEqual(['2']);
    expect(list.size).toBe(0);
    expect(list.waiting(LOCAL_DESTINATION)).toBe(false);
  });

  it('keeps order across many entries (the array is compacted as it is consumed)', () => {
    const list = new HandOffWaitList<number>({ entries: 10_000, bytes: 1e9 });
    for (let n = 0; n < 5000; n += 1) list.push(`${n}~local`, LOCAL_DESTINATION, n, 1);
    const out: number[] = [];
    for (;;) {
      const batch = list.serve(() => () => undefined);
      if (batch.length === 0) break;
      out.push(...batch.map((s) => s.item));
    }
    expect(out).toEqual(Array.from({ length: 5000 }, (_, n) => n));
  });
});
