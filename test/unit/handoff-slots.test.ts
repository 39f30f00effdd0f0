import { describe, expect, it } from 'vitest';
import { HandOffSlots } from '../../src/delivery/handoff-slots.js';
import { LOCAL_DESTINATION } from '../../src/delivery/index.js';

const limits = { local: 2, relay: 3, relayPerDestination: 2, relayEnabled: true };

describe('hand-off slots', () => {
  it('bounds local hand-offs by the local concurrency, independently of the relay ones', () => {
    const slots = new HandOffSlots(limits);
    const a = slots.take(LOCAL_DESTINATION);
    const b = slots.take(LOCAL_DESTINATION);
    expect(a).toBeTypeOf('function');
    expect(b).toBeTypeOf('function');
    expect(slots.take(LOCAL_DESTINATION)).toBeUndefined();
    expect(slots.take('peer.test')).toBeTypeOf('function');
    expect(slots.size).toBe(3);
    a!();
    expect(slots.take(LOCAL_DESTINATION)).toBeTypeOf('function');
  });

  it('bounds relay hand-offs per domain by its connection limit, and all domains by the relay concurrency', () => {
    const slots = new HandOffSlots(limits);
    const first = slots.take('peer.test');
    expect(slots.take('peer.test')).toBeTypeOf('function');
    // The domain is at its limit; another domain still gets one, up to the relay concurrency.
    expect(slots.take('peer.test')).toBeUndefined();
    expect(slots.take('other.test')).toBeTypeOf('function');
    expect(slots.take('third.test')).toBeUndefined();
    // A release frees the slot once, however often it is called.
    first!();
    first!();
    expect(slots.size).toBe(2);
    expect(slots.take('third.test')).toBeTypeOf('function');
    expect(slots.take('peer.test')).toBeUndefined();
  });

  it('gives no relay hand-off when this process does not relay', () => {
    const slots = new HandOffSlots({ ...limits, relayEnabled: false });
    expect(slots.take('peer.test')).toBeUndefined();
    expect(slots.take(LOCAL_DESTINATION)).toBeTypeOf('function');
    // Never, not merely not now: such a destination goes to the queue, not to the wait list.
    expect(slots.mayTake('peer.test')).toBe(false);
    expect(slots.mayTake(LOCAL_DESTINATION)).toBe(true);
    expect(new HandOffSlots(limits).mayTake('peer.test')).toBe(true);
  });
});
