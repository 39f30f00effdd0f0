import { describe, expect, it } from 'vitest';
import { ConnectionGate, sourceOf } from '../../src/shared/index.js';

describe('sourceOf', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7'],
    ['::ffff:192.0.2.7', '192.0.2.7'],
    ['2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'],
    ['2001:db8:1:2::9', '2001:db8:1:2::/64'],
    ['2001:DB8::1', '2001:db8:0:0::/64'],
    [undefined, 'unknown'],
  ])('%s → %s', (address, source) => expect(sourceOf(address)).toBe(source));
});

describe('ConnectionGate', () => {
  it('limits unauthenticated connections per source, not authenticated ones, and the total', () => {
    const gate = new ConnectionGate({ maxConnections: 4, maxPreauthPerSource: 2 });
    const a1 = gate.admit('192.0.2.1');
    const a2 = gate.admit('192.0.2.1');
    expect(gate.admit('192.0.2.1')).toEqual({ ok: false, reason: 'max-per-source' });
    expect(gate.admit('192.0.2.9').ok).toBe(true);
    if (!a1.ok || !a2.ok) throw new Error('admitted');
    a1.ticket.authenticated();
    a1.ticket.authenticated();
    expect(gate.admit('192.0.2.1').ok).toBe(true);
    expect(gate.admit('192.0.2.5')).toEqual({ ok: false, reason: 'max-connections' });
    a2.ticket.release();
    a2.ticket.release();
    expect(gate.size).toBe(3);
    gate.close();
    expect(gate.admit('192.0.2.5')).toEqual({ ok: false, reason: 'shutting-down' });
  });
});
