import { createHash } from 'node:crypto';
import { expect } from 'vitest';
import type { Clock } from '../../src/shared/index.js';
import { uniqueAddress, type AdminHarness } from './admin-harness.js';
import { call } from './admin-http.js';

/** National ids used by the rights tests (8 + RPPS, 0 + ADELI) and a structure id. */
export const RPPS_A = '810001234567';
export const RPPS_B = '810009876543';
export const ADELI_C = '02A1234567';
export const FINESS = '1750712184';

/** A clock the test moves by hand: expiry is tested without waiting. */
export class SettableClock implements Clock {
  #now: number;

  constructor(start: Date | string = new Date()) {
    this.#now = new Date(start).getTime();
  }

  now(): Date {
    return new Date(this.#now);
  }

  set(at: Date | string): void {
    this.#now = new Date(at).getTime();
  }
}

/** Creates a BAL over the API and returns its address. */
export async function createBal(
  h: AdminHarness,
  type: 'PER' | 'ORG' | 'APP' | 'CAB',
  owner: string,
  label = type.toLowerCase(),
): Promise<string> {
  const address = uniqueAddress(label);
  const answer = await call(h, 'POST', '/v1/bals', { json: { address, type, owner } });
  expect(answer.status).toBe(201);
  return address;
}

export function rightsPath(address: string, query = ''): string {
  return `/v1/bals/${encodeURIComponent(address)}/rights${query}`;
}

async function scanKeys(h: AdminHarness, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await h.redis.scan(cursor, 'MATCH', `${h.prefix}${pattern}`, 'COUNT', 1000);
    keys.push(...batch);
    cursor = next;
  } while (cursor !== '0');
  return keys;
}

function reverseKey(prefix: string, field: string): string {
  if (field.startsWith('person:')) return `${prefix}person-bals:${field.slice('person:'.length)}`;
  const dn = field.slice('certificate:'.length);
  return `${prefix}certificate-bals:${createHash('sha1').update(dn, 'utf8').digest('hex')}`;
}

/**
 * Checks the registry's rights indexes against the grants, read straight from Redis: each grant has
 * its reverse-index entry and expiry entry, and each index entry has its grant. Returns the
 * `address field` pairs of all grants.
 */
export async function expectRightsIndexConsistent(h: AdminHarness): Promise<string[]> {
  const fromGrants = new Map<string, string[]>();
  const expiries: Record<string, string> = {};
  const pairs: string[] = [];
  for (const key of await scanKeys(h, 'rights:*')) {
    const address = key.slice(`${h.prefix}rights:`.length);
    for (const [field, json] of Object.entries(await h.redis.hgetall(key))) {
      pairs.push(`${address} ${field}`);
      const index = reverseKey(h.prefix, field);
      fromGrants.set(index, [...(fromGrants.get(index) ?? []), address].sort());
      const { expiresAt } = JSON.parse(json) as { expiresAt?: string };
      if (expiresAt !== undefined) expiries[`${address} ${field}`] = String(Date.parse(expiresAt));
    }
  }
  const fromIndexes = new Map<string, string[]>();
  for (const key of [...(await scanKeys(h, 'person-bals:*')), ...(await scanKeys(h, 'certificate-bals:*'))]) {
    fromIndexes.set(key, (await h.redis.smembers(key)).sort());
  }
  expect(Object.fromEntries(fromIndexes)).toEqual(Object.fromEntries(fromGrants));
  const zset = await h.redis.zrange(`${h.prefix}bals:rights-expiry`, 0, -1, 'WITHSCORES');
  const indexed: Record<string, string> = {};
  for (let i = 0; i + 1 < zset.length; i += 2) indexed[zset[i]!] = zset[i + 1]!;
  expect(indexed).toEqual(expiries);
  return pairs.sort();
}
