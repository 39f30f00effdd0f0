import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/observability/index.js';
import { loginOutcomeLabel } from '../../src/errors/index.js';

describe('metric names', () => {
  it('leaves Node process metrics their usual names and names no gauge like a counter', async () => {
    const text = await createMetrics().registry.metrics();
    const types = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => ({ name, type }));
    expect(types.map((t) => t.name)).toEqual(
      expect.arrayContaining([
        'process_cpu_seconds_total',
        'nodejs_eventloop_lag_p99_seconds',
        'nodejs_active_resources',
      ]),
    );
    expect(types.filter((t) => /^mssgw_(process|nodejs)_/.test(t.name!))).toEqual([]);
    expect(types.filter((t) => t.type === 'gauge' && t.name!.endsWith('_total'))).toEqual([]);
    expect(types.filter((t) => t.type === 'counter' && !t.name!.endsWith('_total'))).toEqual([]);
    expect(text).toMatch(/^nodejs_active_resources\{type="[^"]+"\} [1-9]\d*$/m);
  });
});

describe('login outcome labels', () => {
  it.each([
    ['ok', 'ok'],
    ['AUTH_TOKEN_EXPIRED', 'token_expired'],
    ['AUTH_RATE_LIMITED', 'rate_limited'],
    ['CERT_MISSING', 'cert_missing'],
    ['STORE_UNAVAILABLE', 'store_unavailable'],
  ] as const)('%s is counted as %s', (code, label) => {
    expect(loginOutcomeLabel(code)).toBe(label);
  });
});
