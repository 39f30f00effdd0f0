import { Redis } from 'ioredis';
import { describe, expect, it, vi } from 'vitest';
import type { Bal, BalPage } from '../../src/registry/index.js';
import { freePort } from '../helpers/free-port.js';
import { TEST_DOMAINS, useAdminHarness, storeProvisioner, uniqueAddress } from '../helpers/admin-harness.js';
import { balPath, call, expectProblem } from '../helpers/admin-http.js';

const PERSON = '810001234567';
const FINESS = '1750712184';

const start = useAdminHarness();

describe('admin API: mailbox lifecycle over HTTP', () => {
  it('creates, shows, lists, suspends, resumes and deletes a BAL, journaling each change', async () => {
    const h = await start();
    const address = uniqueAddress('dr.martin');
    const mixedCase = address.replace('dr.martin', 'Dr.Martin');

    const created = await call(h, 'POST', '/v1/bals', {
      json: { address: mixedCase, type: 'PER', owner: PERSON },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ address, type: 'PER', owner: PERSON, status: 'active' });
    expect(created.body.createdAt).toBe(created.body.updatedAt);

    const shown = await call(h, 'GET', balPath(mixedCase));
    expect(shown.status).toBe(200);
    expect(shown.body).toEqual(created.body);

    const listed = await call(h, 'GET', '/v1/bals');
    expect((listed.body as unknown as BalPage).items).toEqual([created.body]);

    const suspended = await call(h, 'POST', balPath(address, '/suspend'), { json: { reason: 'unpaid' } });
    expect(suspended.status).toBe(200);
    expect(suspended.body).toMatchObject({ status: 'suspended', statusReason: 'unpaid' });
    expect(suspended.body.suspendedAt).toEqual(expect.any(String));

    const resumed = await call(h, 'POST', balPath(address, '/resume'));
    expect(resumed.status).toBe(200);
    expect(resumed.body).toMatchObject({ status: 'active' });
    expect(resumed.body).not.toHaveProperty('suspendedAt');
    expect(resumed.body).not.toHaveProperty('statusReason');

    const deleted = await call(h, 'DELETE', balPath(address));
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ status: 'deleted', deletedAt: expect.any(String) as unknown });

    const again = await call(h, 'POST', '/v1/bals', { json: { address, type: 'PER', owner: PERSON } });
    expect(expectProblem(again, 409, 'BAL_EXISTS')).toMatch(/was deleted and cannot be created again/);

    const events = h
      .journal()
      .map(({ event, address: a, type, reason, actor }) => ({ event, a, type, reason, actor }));
    const actor = { kind: 'admin-api', id: 'anonymous', remote: '127.0.0.1' };
    expect(events).toEqual([
      { event: 'registry.bal.created', a: address, type: 'PER', reason: undefined, actor },
      { event: 'registry.bal.suspended', a: address, type: 'PER', reason: 'unpaid', actor },
      { event: 'registry.bal.resumed', a: address, type: 'PER', reason: undefined, actor },
      { event: 'registry.bal.deleted', a: address, type: 'PER', reason: undefined, actor },
    ]);
    expect(await h.registry.countByStatusAndType()).toMatchObject({
      active: { PER: 0 },
      deleted: { PER: 1, ORG: 0, APP: 0, CAB: 0 },
    });
  });

  it('lists by page, in address order, filtered by status and type', async () => {
    const h = await start();
    const specs = [
      { address: uniqueAddress('a'), type: 'PER', owner: PERSON },
      { address: uniqueAddress('b', TEST_DOMAINS[1]), type: 'CAB', owner: FINESS },
      { address: uniqueAddress('c'), type: 'ORG', owner: FINESS },
      { address: uniqueAddress('d'), type: 'APP', owner: FINESS },
      { address: uniqueAddress('e'), type: 'PER', owner: '0751234567' },
    ];
    for (const spec of specs) expect((await call(h, 'POST', '/v1/bals', { json: spec })).status).toBe(201);
    await call(h, 'POST', balPath(specs[4]!.address, '/suspend'));

    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = (await call(h, 'GET', `/v1/bals?limit=2${cursor ? `&cursor=${cursor}` : ''}`))
        .body as unknown as BalPage;
      expect(page.items.length).toBeLessThanOrEqual(2);
      seen.push(...page.items.map((b) => b.address));
      cursor = page.nextCursor;
    } while (cursor !== undefined);
    expect(seen).toEqual(specs.map((s) => s.address).sort());

    const per = (await call(h, 'GET', '/v1/bals?type=PER')).body as unknown as BalPage;
    expect(per.items.map((b) => b.address)).toEqual([specs[0]!.address, specs[4]!.address]);
    const suspended = (await call(h, 'GET', '/v1/bals?status=suspended')).body as unknown as BalPage;
    expect(suspended.items.map((b: Bal) => b.address)).toEqual([specs[4]!.address]);
    expect(await h.registry.countByStatusAndType()).toEqual({
      active: { PER: 1, ORG: 1, APP: 1, CAB: 1 },
      suspended: { PER: 1, ORG: 0, APP: 0, CAB: 0 },
      deleted: { PER: 0, ORG: 0, APP: 0, CAB: 0 },
    });
  });

  it('logs one line per request, with the problem code of refusals, without bodies', async () => {
    const h = await start();
    const address = uniqueAddress('logged');
    await call(h, 'POST', '/v1/bals', { json: { address, type: 'ORG', owner: FINESS } });
    await call(h, 'GET', balPath(uniqueAddress('absent')));
    const requestLines = () =>
      h
        .logs()
        .split('\n')
        .filter((l) => l.includes('"admin.request"'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
    // The line is written once the response is sent, which can be just after the client has it.
    await vi.waitFor(() => expect(requestLines()).toHaveLength(2));
    expect(requestLines()).toEqual([
      expect.objectContaining({ level: 30, method: 'POST', url: '/v1/bals', status: 201 }),
      expect.objectContaining({ level: 30, method: 'GET', status: 404, code: 'BAL_NOT_FOUND' }),
    ]);
    expect(h.logs()).not.toContain(FINESS);
  });
});

describe('admin API: concurrency and dependencies', () => {
  it('of two concurrent creates of one address, exactly one wins', async () => {
    // Both requests are held after provisioning until both got there, so both have passed the
    // existence check and the atomic write alone must pick the winner.
    const store = storeProvisioner();
    let provisioned = 0;
    let releaseBoth = () => {};
    const bothProvisioned = new Promise<void>((resolve) => (releaseBoth = resolve));
    const h = await start({
      provisioner: {
        provision: async (address) => {
          await store.provision(address);
          if (++provisioned === 2) releaseBoth();
          await bothProvisioned;
        },
      },
    });
    const address = uniqueAddress('race');
    const answers = await Promise.all([
      call(h, 'POST', '/v1/bals', { json: { address, type: 'PER', owner: PERSON } }),
      call(h, 'POST', '/v1/bals', { json: { address: address.toUpperCase(), type: 'ORG', owner: FINESS } }),
    ]);
    expect(provisioned).toBe(2);
    expect(answers.map((a) => a.status).sort()).toEqual([201, 409]);
    const loser = answers.find((a) => a.status === 409);
    expect(expectProblem(loser!, 409, 'BAL_EXISTS')).toMatch(/already exists \(status active\)/);
    const winner = answers.find((a) => a.status === 201)!.body;
    expect(await h.registry.get(address)).toEqual(winner);
    expect(h.journal().filter((e) => e.event === 'registry.bal.created')).toHaveLength(1);
    const counts = await h.registry.countByStatusAndType();
    expect(counts.active.PER + counts.active.ORG).toBe(1);
  });

  it('a store failure answers 503 STORE_UNAVAILABLE and leaves no record', async () => {
    const closedPort = await freePort();
    const h = await start({ provisioner: storeProvisioner({ host: '127.0.0.1', port: closedPort }) });
    const before = await h.keySpace();
    const answer = await call(h, 'POST', '/v1/bals', {
      json: { address: uniqueAddress(), type: 'PER', owner: PERSON },
    });
    expect(expectProblem(answer, 503, 'STORE_UNAVAILABLE')).toMatch(/nothing was created/);
    expect(await h.keySpace()).toEqual(before);
    expect(h.journal()).toEqual([]);
  });

  it('an unreachable Redis answers 503 REGISTRY_UNAVAILABLE', async () => {
    const deadRedis = new Redis({
      host: '127.0.0.1',
      port: await freePort(),
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    deadRedis.on('error', () => {}); // connection refused is the point; the registry reports it
    try {
      const h = await start({ redis: deadRedis });
      const shown = await call(h, 'GET', balPath(uniqueAddress()));
      expect(expectProblem(shown, 503, 'REGISTRY_UNAVAILABLE')).toMatch(/registry \(Redis\) unavailable/);
      const created = await call(h, 'POST', '/v1/bals', {
        json: { address: uniqueAddress(), type: 'PER', owner: PERSON },
      });
      expectProblem(created, 503, 'REGISTRY_UNAVAILABLE');
    } finally {
      deadRedis.disconnect();
    }
  });
});

describe('admin API: bearer token', () => {
  const token = 'a-long-random-admin-token-for-tests';

  it.each([
    ['no Authorization header', {}],
    ['another scheme', { authorization: `Basic ${Buffer.from(`admin:${token}`).toString('base64')}` }],
    ['a wrong token', { authorization: 'Bearer not-the-token' }],
    ['a token prefix', { authorization: `Bearer ${token.slice(0, -1)}` }],
  ])('refuses %s with 401 UNAUTHENTICATED, even on unknown routes', async (_name, headers) => {
    const h = await start({ token });
    for (const path of ['/v1/bals', '/v1/nothing-here']) {
      expectProblem(await call(h, 'GET', path, { headers }), 401, 'UNAUTHENTICATED');
    }
    const before = await h.keySpace();
    const create = await call(h, 'POST', '/v1/bals', {
      json: { address: uniqueAddress(), type: 'PER', owner: PERSON },
      headers,
    });
    expectProblem(create, 401, 'UNAUTHENTICATED');
    expect(await h.keySpace()).toEqual(before);
  });

  it('accepts the token, journals the CLI user it names, and never logs the token', async () => {
    const h = await start({ token });
    const address = uniqueAddress('tok');
    const headers = { authorization: `Bearer ${token}`, 'x-mssgw-actor': 'cli:alice' };
    const created = await call(h, 'POST', '/v1/bals', {
      json: { address, type: 'PER', owner: PERSON },
      headers,
    });
    expect(created.status).toBe(201);
    expect((await call(h, 'GET', '/v1/bals', { headers: { authorization: `bearer ${token}` } })).status).toBe(
      200,
    );
    expect(h.journal()[0]).toMatchObject({
      event: 'registry.bal.created',
      actor: { kind: 'cli', id: 'alice', remote: '127.0.0.1' },
    });
    await vi.waitFor(() => expect(h.logs()).toContain('admin.request'));
    expect(h.logs()).not.toContain(token);
  });
});
