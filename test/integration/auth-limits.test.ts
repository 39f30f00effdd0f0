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
const ATTACKER = '192.0.2.1';
const OWNER = '192.0.2.9';

function limiter(limits: Partial<ConstructorParameters<typeof FailureLimiter>[0]['limits']> = {}) {
  const prefix = `test:${randomUUID()}:`;
  const client = redis();
  const l = new FailureLimiter({
    redis: client,
    prefix,
    clock: systemClock,
    limits: {
      maxFailuresPerAddress: 3,
      maxFailuresPerSource: 10,
      failureWindowSeconds: 60,
      lockoutSeconds: 300,
      mailboxDelayMaxMs: 2000,
      ...limits,
    },
  });
  return { l, prefix, client };
}

type Attempt = Parameters<FailureLimiter['recordFailure']>[0];

async function fail(l: FailureLimiter, times: number, attempt: Attempt = password(ATTACKER)) {
  const lockouts = [];
  for (let i = 0; i < times; i++) lockouts.push(...(await l.recordFailure(attempt)).lockouts);
  return lockouts;
}

function password(remote: string, bal = BAL): Attempt {
  return { bal, remote, kind: 'password' };
}

describe('failure limiter on Redis', () => {
  it('locks a source out of a mailbox once its limit is reached, for a time that doubles', async () => {
    const { l } = limiter();
    expect(await fail(l, 2)).toEqual([]);
    expect(await l.check(password(ATTACKER))).toEqual({ allowed: true, delayMs: 0 });

    // Locks of 1 s, 2 s, 4 s: checks below look only while a lock of seconds runs, so a slow
    // machine cannot see one end.
    expect(await fail(l, 1)).toEqual([{ scope: 'source_mailbox', ms: 1000 }]);
    expect(await fail(l, 1)).toEqual([{ scope: 'source_mailbox', ms: 2000 }]);
    expect(await fail(l, 1)).toEqual([{ scope: 'source_mailbox', ms: 4000 }]);
    const locked = await l.check(password(ATTACKER, BAL.toUpperCase()));
    expect(locked).toMatchObject({ allowed: false, scope: 'source_mailbox' });
    expect(!locked.allowed && locked.retryAfterMs).toBeGreaterThan(2000);
    expect(!locked.allowed && locked.retryAfterMs).toBeLessThanOrEqual(4000);
    // The attacker may still try another mailbox (until the source's own limit).
    expect(await l.check(password(ATTACKER, 'other@op.mssante.test'))).toEqual({ allowed: true, delayMs: 0 });
    // The owner, from another address, is neither refused nor slowed by one source's brute force:
    // that source is the one locked, its failures past its limit do not count on the mailbox.
    expect(await l.check(password(OWNER))).toEqual({ allowed: true, delayMs: 0 });
    await fail(l, 10);
    expect(await l.check(password(OWNER))).toEqual({ allowed: true, delayMs: 0 });
    expect(await l.failures('password', 'mailbox', { bal: BAL })).toBe(2);
  });

  it('slows (never refuses) every attempt on a mailbox many sources failed on', async () => {
    const { l } = limiter();
    // Attackers spread over addresses, each staying below its own limit of 3.
    for (const n of [1, 2, 3, 4]) await fail(l, 2, password(`198.51.100.${n}`));
    // 8 failures on the mailbox, limit 3: 250 ms doubling per failure past it, capped at 2 s.
    expect(await l.check(password(OWNER))).toEqual({ allowed: true, delayMs: 2000 });
    await l.recordSuccess(password(OWNER));
    expect(await l.check(password(OWNER))).toEqual({ allowed: true, delayMs: 0 });
    await fail(l, 1, password('198.51.100.5'));
    await fail(l, 1, password('198.51.100.6'));
    await fail(l, 1, password('198.51.100.7'));
    expect(await l.check(password(OWNER))).toEqual({ allowed: true, delayMs: 250 });
  });

  it('password failures never slow or lock a token or certificate login, from anywhere', async () => {
    const { l } = limiter();
    await fail(l, 20);
    expect((await l.check(password(ATTACKER))).allowed).toBe(false);
    for (const kind of ['token', 'certificate'] as const) {
      expect(await l.check({ bal: BAL, remote: ATTACKER, kind })).toEqual({ allowed: true, delayMs: 0 });
      expect(await l.check({ bal: BAL, remote: OWNER, kind })).toEqual({ allowed: true, delayMs: 0 });
    }
  });

  it('caps the lock at lockoutSeconds', async () => {
    const { l } = limiter({ lockoutSeconds: 3 });
    const lockouts = await fail(l, 8);
    expect(lockouts.map((x) => x.ms)).toEqual([1000, 2000, 3000, 3000, 3000, 3000]);
  });

  it('a success clears the mailbox counters and lock of that credential kind', async () => {
    const { l } = limiter();
    await fail(l, 6);
    expect((await l.check(password(ATTACKER))).allowed).toBe(false);
    await l.recordSuccess(password(ATTACKER));
    expect(await l.check(password(ATTACKER))).toEqual({ allowed: true, delayMs: 0 });
    expect(await l.failures('password', 'source_mailbox', { bal: BAL, remote: ATTACKER })).toBe(0);
    expect(await l.failures('password', 'mailbox', { bal: BAL })).toBe(0);
    expect(await l.failures('password', 'source', { remote: ATTACKER })).toBe(6);
    expect(await fail(l, 2)).toEqual([]);
  });

  it('locks a source that fails on many mailboxes; a success elsewhere does not clear it', async () => {
    const { l } = limiter({ maxFailuresPerSource: 5 });
    const remote = '2001:db8:1:2:aaaa::1';
    // Five failures reach the limit; four more make the lock 16 s.
    for (let i = 0; i < 9; i++) await l.recordFailure(password(remote, `user${i}@op.mssante.test`));
    // Same /64, another interface identifier.
    const check = await l.check(password('2001:db8:1:2::beef', 'fresh@op.mssante.test'));
    expect(check).toMatchObject({ allowed: false, scope: 'source' });
    await l.recordSuccess(password(remote, 'fresh@op.mssante.test'));
    expect((await l.check(password(remote, 'fresh@op.mssante.test'))).allowed).toBe(false);
    expect((await l.check(password('2001:db8:1:3::1', 'fresh@op.mssante.test'))).allowed).toBe(true);
    expect(await l.activeLockouts()).toEqual({ source: 1, source_mailbox: 0 });
  });

  it('counts active lockouts per scope for the gauge', async () => {
    const { l } = limiter();
    expect(await l.activeLockouts()).toEqual({ source: 0, source_mailbox: 0 });
    await fail(l, 5);
    await fail(l, 5, password(ATTACKER, 'b@op.mssante.test'));
    // Ten failures from one source also reach its limit.
    expect(await l.activeLockouts()).toEqual({ source: 1, source_mailbox: 2 });
  });

  it('keeps every counter under a TTL and long names short: memory bounded by time, not by names', async () => {
    const { l, client, prefix } = limiter({ maxFailuresPerSource: 1000 });
    const long = `${'x'.repeat(240)}@op.mssante.test`;
    for (let i = 0; i < 200; i++) {
      await l.recordFailure(password(`198.51.100.${i % 250}`, i % 2 === 0 ? long : `u${i}@op.mssante.test`));
    }
    const keys = await client.keys(`${prefix}*`);
    expect(keys.length).toBeGreaterThan(200);
    for (const key of keys) {
      expect(key.length).toBeLessThan(prefix.length + 140);
      const ttl = await client.pttl(key);
      expect(ttl, key).toBeGreaterThan(0);
    }
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
