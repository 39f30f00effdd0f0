import { describe, expect, it } from 'vitest';
import {
  type MxLookup,
  type MxRecord,
  RelayError,
  orderMx,
  resolveDestination,
} from '../../src/relay/index.js';

const dnsError = (code: string) => Object.assign(new Error(`queryMx ${code}`), { code });
const answering =
  (records: readonly MxRecord[]): MxLookup =>
  () =>
    Promise.resolve(records);
const failing =
  (code: string): MxLookup =>
  () =>
    Promise.reject(dnsError(code));
const never: MxLookup = () => Promise.reject(new Error('DNS must not be asked'));

/** A deterministic random source: yields the given values in turn. */
function sequence(...values: number[]): () => number {
  let i = 0;
  return () => values[i++ % values.length] ?? 0;
}

async function failureOf(p: Promise<unknown>): Promise<RelayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(RelayError);
  return err as RelayError;
}

describe('resolveDestination', () => {
  it('uses the MX records, lowest priority first, on port 25', async () => {
    const hosts = await resolveDestination('Peer.MSSante.test', {
      lookupMx: answering([
        { exchange: 'mx2.peer.test', priority: 20 },
        { exchange: 'mx1.peer.test.', priority: 10 },
      ]),
    });
    expect(hosts).toEqual([
      { host: 'mx1.peer.test', port: 25, source: 'mx' },
      { host: 'mx2.peer.test', port: 25, source: 'mx' },
    ]);
  });

  it('asks DNS with the normalised domain', async () => {
    const asked: string[] = [];
    await resolveDestination('Peer.MSSante.TEST.', {
      lookupMx: (d) => {
        asked.push(d);
        return Promise.resolve([{ exchange: 'mx.peer.test', priority: 0 }]);
      },
    });
    expect(asked).toEqual(['peer.mssante.test']);
  });

  it('falls back to the domain itself when it has no MX (RFC 5321 §5.1 implicit MX)', async () => {
    for (const lookupMx of [failing('ENODATA'), answering([])]) {
      expect(await resolveDestination('peer.mssante.test', { lookupMx, port: 2525 })).toEqual([
        { host: 'peer.mssante.test', port: 2525, source: 'implicit' },
      ]);
    }
  });

  it.each([
    ['ENOTFOUND', 'domain_not_found', false],
    ['ESERVFAIL', 'dns_unavailable', true],
    ['ETIMEOUT', 'dns_unavailable', true],
    ['ECONNREFUSED', 'dns_unavailable', true],
    ['EREFUSED', 'dns_unavailable', true],
  ])('%s is %s', async (code, reason, temporary) => {
    const err = await failureOf(resolveDestination('peer.mssante.test', { lookupMx: failing(code) }));
    expect(err).toMatchObject({ reason, temporary, hostScoped: false });
  });

  it('treats a null MX as a permanent refusal (RFC 7505)', async () => {
    const err = await failureOf(
      resolveDestination('peer.mssante.test', { lookupMx: answering([{ exchange: '', priority: 0 }]) }),
    );
    expect(err).toMatchObject({ reason: 'null_mx', temporary: false });
  });

  it('refuses a name that is not a domain', async () => {
    const err = await failureOf(resolveDestination('not a domain', { lookupMx: never }));
    expect(err.reason).toBe('domain_not_found');
  });

  it('lets a static route override DNS, in the given order', async () => {
    const routes = {
      'PEER.mssante.test': [
        { host: '127.0.0.1', port: 2525 },
        { host: 'backup.local', port: 25 },
      ],
    };
    expect(await resolveDestination('peer.mssante.test', { routes, lookupMx: never })).toEqual([
      { host: '127.0.0.1', port: 2525, source: 'static' },
      { host: 'backup.local', port: 25, source: 'static' },
    ]);
  });

  it('asks DNS for domains without a static route (or with an empty one)', async () => {
    const routes = { 'peer.mssante.test': [{ host: '127.0.0.1', port: 2525 }], 'empty.test': [] };
    const lookupMx = answering([{ exchange: 'mx.other.test', priority: 5 }]);
    for (const domain of ['other.mssante.test', 'empty.test']) {
      expect(await resolveDestination(domain, { routes, lookupMx })).toEqual([
        { host: 'mx.other.test', port: 25, source: 'mx' },
      ]);
    }
  });
});

describe('orderMx', () => {
  const records: MxRecord[] = [
    { exchange: 'c', priority: 20 },
    { exchange: 'a1', priority: 10 },
    { exchange: 'a2', priority: 10 },
    { exchange: 'a3', priority: 10 },
  ];

  it('sorts by priority and shuffles ties with the random source', () => {
    // One random key per record, in input order: c, a1, a2, a3.
    expect(orderMx(records, sequence(0.5, 0.9, 0.1, 0.5)).map((r) => r.exchange)).toEqual([
      'a2',
      'a3',
      'a1',
      'c',
    ]);
    expect(orderMx(records, sequence(0.5, 0.1, 0.5, 0.9)).map((r) => r.exchange)).toEqual([
      'a1',
      'a2',
      'a3',
      'c',
    ]);
  });

  it('spreads the first choice over equal-priority hosts', () => {
    const first = new Set<string>();
    for (let i = 0; i < 200; i++) first.add(orderMx(records)[0]!.exchange);
    expect(first).toEqual(new Set(['a1', 'a2', 'a3']));
  });

  it('does not modify its input', () => {
    const copy = [...records];
    orderMx(records);
    expect(records).toEqual(copy);
  });
});
