import { afterEach, describe, expect, it } from 'vitest';
import { startAdminHarness, uniqueAddress, type AdminHarness } from '../helpers/admin-harness.js';
import { balPath, call, expectProblem } from '../helpers/admin-http.js';

const PERSON = '810001234567';
const FINESS = '1750712184';

let harness: AdminHarness | undefined;

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

describe('admin API: refused requests answer problem details and change nothing', () => {
  const existing = uniqueAddress('existing');
  const cases: Array<{
    name: string;
    method: string;
    path: string;
    json?: unknown;
    raw?: string;
    contentType?: string;
    status: number;
    code: string;
    detail: RegExp;
    field?: string;
  }> = [
    {
      name: 'unknown type',
      method: 'POST',
      path: '/v1/bals',
      json: { address: uniqueAddress(), type: 'PAT', owner: PERSON },
      status: 400,
      code: 'BAL_INVALID_TYPE',
      detail: /use PER .*ORG .*APP .*CAB/,
    },
    {
      name: 'address outside our domains',
      method: 'POST',
      path: '/v1/bals',
      json: { address: 'x@other-op.mssante.fr', type: 'PER', owner: PERSON },
      status: 400,
      code: 'BAL_DOMAIN_NOT_OURS',
      detail: /not operated by this gateway; use one of: op.mssante.test/,
    },
    {
      name: 'malformed address',
      method: 'POST',
      path: '/v1/bals',
      json: { address: 'Dr Martin <x@op.mssante.test>', type: 'PER', owner: PERSON },
      status: 400,
      code: 'BAL_INVALID_ADDRESS',
      detail: /without a display name/,
    },
    {
      name: 'bad PER owner',
      method: 'POST',
      path: '/v1/bals',
      json: { address: uniqueAddress(), type: 'PER', owner: FINESS },
      status: 400,
      code: 'BAL_INVALID_OWNER',
      detail: /8 followed by the 11-digit RPPS/,
    },
    {
      name: 'bad structure owner',
      method: 'POST',
      path: '/v1/bals',
      json: { address: uniqueAddress(), type: 'ORG', owner: 'FINESS' },
      status: 400,
      code: 'BAL_INVALID_OWNER',
      detail: /structure's national id/,
    },
    {
      name: 'duplicate',
      method: 'POST',
      path: '/v1/bals',
      json: { address: existing.toUpperCase(), type: 'ORG', owner: FINESS },
      status: 409,
      code: 'BAL_EXISTS',
      detail: /already exists \(status active\)/,
    },
    {
      name: 'malformed JSON body',
      method: 'POST',
      path: '/v1/bals',
      raw: '{"address": "x@op.mssante.test",',
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /JSON/,
    },
    {
      name: 'missing field',
      method: 'POST',
      path: '/v1/bals',
      json: { address: uniqueAddress(), type: 'PER' },
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /^body\.owner is required$/,
      field: 'owner',
    },
    {
      name: 'unknown field',
      method: 'POST',
      path: '/v1/bals',
      json: { address: uniqueAddress(), type: 'PER', owner: PERSON, name: 'x' },
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /body\.name is not a known field/,
      field: 'name',
    },
    {
      name: 'field of the wrong type',
      method: 'POST',
      path: '/v1/bals',
      json: { address: uniqueAddress(), type: 'PER', owner: { rpps: 1 } },
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /^body\.owner must be string$/,
      field: 'owner',
    },
    {
      name: 'body not JSON',
      method: 'POST',
      path: '/v1/bals',
      raw: 'address=x',
      contentType: 'application/x-www-form-urlencoded',
      status: 415,
      code: 'REQUEST_UNSUPPORTED_MEDIA_TYPE',
      detail: /application\/json/,
    },
    {
      name: 'list with a bad limit',
      method: 'GET',
      path: '/v1/bals?limit=5000',
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /querystring\.limit must be <= 1000/,
      field: 'limit',
    },
    {
      name: 'list with a bad status',
      method: 'GET',
      path: '/v1/bals?status=asleep',
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /querystring\.status/,
      field: 'status',
    },
    {
      name: 'list with a forged cursor',
      method: 'GET',
      path: '/v1/bals?cursor=%21%21',
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /cursor is not one this API returned/,
    },
    {
      name: 'show an absent BAL',
      method: 'GET',
      path: balPath(uniqueAddress('absent')),
      status: 404,
      code: 'BAL_NOT_FOUND',
      detail: /no mailbox absent\./,
    },
    {
      name: 'suspend an absent BAL',
      method: 'POST',
      path: balPath(uniqueAddress('absent'), '/suspend'),
      status: 404,
      code: 'BAL_NOT_FOUND',
      detail: /no mailbox/,
    },
    {
      name: 'resume an active BAL',
      method: 'POST',
      path: balPath(existing, '/resume'),
      status: 409,
      code: 'BAL_INVALID_TRANSITION',
      detail: /is already active/,
    },
    {
      name: 'suspend with an unknown field',
      method: 'POST',
      path: balPath(existing, '/suspend'),
      json: { why: 'x' },
      status: 400,
      code: 'REQUEST_INVALID',
      detail: /body\.why is not a known field/,
      field: 'why',
    },
    {
      name: 'unknown route',
      method: 'GET',
      path: '/v1/mailboxes',
      status: 404,
      code: 'ROUTE_NOT_FOUND',
      detail: /no route GET \/v1\/mailboxes/,
    },
    {
      name: 'unknown method',
      method: 'PUT',
      path: '/v1/bals',
      json: {},
      status: 404,
      code: 'ROUTE_NOT_FOUND',
      detail: /no route PUT/,
    },
  ];

  it.each(cases)('$name → $status $code', async (c) => {
    const h = (harness = await startAdminHarness());
    expect(
      (await call(h, 'POST', '/v1/bals', { json: { address: existing, type: 'ORG', owner: FINESS } })).status,
    ).toBe(201);
    const before = await h.keySpace();
    const journalBefore = h.journal().length;

    const answer = await call(h, c.method, c.path, {
      ...(c.json === undefined ? {} : { json: c.json }),
      ...(c.raw === undefined ? {} : { raw: c.raw }),
      ...(c.contentType === undefined ? {} : { contentType: c.contentType }),
    });
    expect(expectProblem(answer, c.status, c.code)).toMatch(c.detail);
    if (c.field !== undefined) expect(answer.body.field).toBe(c.field);

    expect(await h.keySpace()).toEqual(before);
    expect(h.journal()).toHaveLength(journalBefore);
  });
});
