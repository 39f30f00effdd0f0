import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { FailureLimiter, SecretStore, hashSecret, verifySecretHash } from '../../src/auth/index.js';
import { systemClock } from '../../src/shared/index.js';

const clients: Redis[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

function redis(): Redis {
  const client = new Redis(inject('redisUrl'));
  clients.push(client);
  return client;
}

const BAL = 'dr.martin@op.mssante.test';

function limiter(limits: Partial<ConstructorParameters<typeof FailureLimiter>[0]['limits']> = {}) {
  const prefix = `test:${randomUUID()}:`;
  const l = new FailureLimiter({
    redis: redis(),
    prefix,
    clock: systemClock,
    limits: {
      maxFailuresPerAddress: 3,
      maxFailuresPerSource: 10,
      failureWindowSeconds: 60,
      lockoutSeconds: 300,
      ...limits,
    },
  });
  return { l, prefix };
}

async function fail(l: FailureLimiter, times: number, attempt = { bal: BAL, remote: '192.0.2.1' }) {
  const lockouts = [];
  for (let i = 0; i < times; i++) lockouts.push(...(await l.recordFailure(attempt)).lockouts);
  return lockouts;
}

describe('failure limiter on Redis', () => {
  it('locks a mailbox once its limit is reached, for a time that doubles with each failure', async () => {
    const { l } = limiter();
    expect(await fail(l, 2)).toEqual([]);
    expect(await l.check({ bal: BAL, remote: '192.0.2.9' })).toEqual({ allowed: true });

    // Locks of 1 s, 2 s, 4 s: checks below look only while a lock of seconds runs, so a slow
    // machine cannot see one end.
    expect(await fail(l, 1)).toEqual([{ scope: 'address', ms: 1000 }]);
    expect(await fail(l, 1)).toEqual([{ scope: 'address', ms: 2000 }]);
    expect(await fail(l, 1)).toEqual([{ scope: 'address', ms: 4000 }]);
    const locked = await l.check({ bal: BAL.toUpperCase(), remote: '192.0.2.9' });
    expect(locked).toMatchObject({ allowed: false, scope: 'address' });
    expect(!locked.allowed && locked.retryAfterMs).toBeGreaterThan(2000);
    expect(!locked.allowed && locked.retryAfterMs).toBeLessThanOrEqual(4000);
    // Another mailbox is not affected.
    expect(await l.check({ bal: 'other@op.mssante.test', remote: '192.0.2.9' })).toEqual({ allowed: true });
  });

  it('caps the lock at lockoutSeconds', async () => {
    const { l } = limiter({ lockoutSeconds: 3 });
    const lockouts = await fail(l, 8);
    expect(lockouts.map((x) => x.ms)).toEqual([1000, 2000, 3000, 3000, 3000, 3000]);
  });

  it('a success clears the mailbox counter and lock', async () => {
    const { l } = limiter();
    await fail(l, 6);
    expect((await l.check({ bal: BAL, remote: '192.0.2.1' })).allowed).toBe(false);
    await l.recordSuccess({ bal: BAL, remote: '192.0.2.1' });
    expect(await l.check({ bal: BAL, remote: '192.0.2.1' })).toEqual({ allowed: true });
    expect(await l.failures('address', BAL)).toBe(0);
    expect(await fail(l, 2)).toEqual([]);
  });

  it('locks a source that fails on many mailboxes; a success elsewhere does not clear it', async () => {
    const { l } = limiter({ maxFailuresPerSource: 5 });
    const remote = '2001:db8:1:2:aaaa::1';
    // Five failures reach the limit; four more make the lock 16 s.
    for (let i = 0; i < 9; i++) await l.recordFailure({ bal: `user${i}@op.mssante.test`, remote });
    // Same /64, another interface identifier.
    const check = await l.check({ bal: 'fresh@op.mssante.test', remote: '2001:db8:1:2::beef' });
    expect(check).toMatchObject({ allowed: false, scope: 'source' });
    await l.recordSuccess({ bal: 'fresh@op.mssante.test', remote });
    expect((await l.check({ bal: 'fresh@op.mssante.test', remote })).allowed).toBe(false);
    expect((await l.check({ bal: 'fresh@op.mssante.test', remote: '2001:db8:1:3::1' })).allowed).toBe(true);
    expect(await l.activeLockouts()).toEqual({ address: 0, source: 1 });
  });

  it('counts active lockouts per scope for the gauge', async () => {
    const { l } = limiter();
    expect(await l.activeLockouts()).toEqual({ address: 0, source: 0 });
    await fail(l, 5);
    await fail(l, 5, { bal: 'b@op.mssante.test', remote: '192.0.2.1' });
    // Ten failures from one source also reach its limit.
    expect(await l.activeLockouts()).toEqual({ address: 2, source: 1 });
  });
});

describe('operator-managed secrets (scrypt)', () => {
  function store() {
    const prefix = `test:${randomUUID()}:`;
    const client = redis();
    return { s: new SecretStore({ redis: client, prefix }), client, prefix };
  }

  it('stores an scrypt hash with its parameters, never the secret, and verifies it', async () => {
    const { s, client, prefix } = store();
    await s.set('Dr.Martin@op.mssante.test', 'correct horse battery');
    const stored = await client.get(`${prefix}secret:dr.martin@op.mssante.test`);
    expect(stored).toMatch(/^\$scrypt\$ln=15,r=8,p=1\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+$/);
    expect(stored).not.toContain('correct horse');
    expect(await s.verify(BAL, 'correct horse battery')).toBe(true);
    expect(await s.verify(BAL, 'correct horse batterY')).toBe(false);
    expect(await s.verify(BAL, '')).toBe(false);
    expect(await s.has(BAL)).toBe(true);
  });

  it('salts each hash and verifies hashes made with other parameters', async () => {
    const a = await hashSecret('same secret here');
    const b = await hashSecret('same secret here');
    expect(a).not.toBe(b);
    const cheap = await hashSecret('same secret here', { ln: 10, r: 8, p: 1 });
    expect(await verifySecretHash(cheap, 'same secret here')).toBe(true);
    expect(await verifySecretHash('$scrypt$ln=99,r=8,p=1$AAAA$AAAA', 'x')).toBe(false);
    expect(await verifySecretHash('plain text', 'plain text')).toBe(false);
  });

  it('answers false for a mailbox without a secret, and removes one', async () => {
    const { s } = store();
    expect(await s.verify(BAL, 'whatever secret')).toBe(false);
    await s.set(BAL, 'a long enough secret');
    expect(await s.remove(BAL)).toBe(true);
    expect(await s.remove(BAL)).toBe(false);
    expect(await s.verify(BAL, 'a long enough secret')).toBe(false);
  });

  it('refuses secrets too short or too long', async () => {
    const { s } = store();
    await expect(s.set(BAL, 'short')).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
    await expect(s.set(BAL, 'x'.repeat(1025))).rejects.toMatchObject({ code: 'REQUEST_INVALID' });
  });
});
