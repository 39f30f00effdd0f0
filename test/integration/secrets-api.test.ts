import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BalSecrets } from '../../src/admin/bal-secrets.js';
import type { Gateway } from '../../src/app/index.js';
import { MemoryAuditJournal } from '../../src/observability/index.js';
import type { Bal } from '../../src/registry/index.js';
import { balPath, call, expectProblem } from '../helpers/admin-http.js';
import {
  adminOf,
  createMailbox,
  gatewayKeys,
  journalText,
  secretPath,
  startSecretGateway,
  STRUCTURE,
} from '../helpers/admin-secrets.js';
import { journalEvents } from '../helpers/journal.js';

const SECRET = 'Tr0ub4dor&3-api-secret';

let gw: Gateway;
let api: { url: string };

beforeAll(async () => {
  gw = await startSecretGateway();
  api = adminOf(gw);
});
afterAll(async () => {
  await gw?.stop();
});

const secretKey = (address: string) => `${gw.config.redis.prefix}secret:${address}`;
const secretEvents = (address: string) =>
  journalEvents(gw.config.dataDir).filter(
    (e) => typeof e.event === 'string' && e.event.startsWith('registry.secret.') && e.address === address,
  );

describe('PUT, GET and DELETE /v1/bals/:address/secret', () => {
  it('sets a secret on an ORG mailbox, shows only that there is one, and removes it', async () => {
    const team = await createMailbox(gw, 'ORG', 'team');
    expect((await call(api, 'GET', secretPath(team))).body).toEqual({
      address: team,
      type: 'ORG',
      hasSecret: false,
      allowed: true,
    });

    const set = await call(api, 'PUT', secretPath(team.toUpperCase()), { json: { secret: SECRET } });
    expect(set.status).toBe(204);
    expect(set.body).toEqual({});
    const stored = await gw.backends.redis.get(secretKey(team));
    expect(stored).toMatch(/^\$scrypt\$ln=\d+,r=\d+,p=\d+\$/);
    expect(stored).not.toContain(SECRET);

    const shown = await call(api, 'GET', secretPath(team));
    expect(shown.body).toEqual({ address: team, type: 'ORG', hasSecret: true, allowed: true });
    // The mailbox record itself is unchanged: the secret is a resource of its own.
    const record = await call(api, 'GET', balPath(team));
    expect(JSON.stringify(record.body)).not.toMatch(/secret|scrypt/i);

    // Replacing is allowed; each change is journaled with its author, never with the secret.
    expect((await call(api, 'PUT', secretPath(team), { json: { secret: `${SECRET}-2` } })).status).toBe(204);
    expect((await call(api, 'DELETE', secretPath(team))).status).toBe(204);
    expect(await gw.backends.redis.exists(secretKey(team))).toBe(0);
    expectProblem(await call(api, 'DELETE', secretPath(team)), 404, 'SECRET_NOT_FOUND');

    const actor = { kind: 'admin-api', id: 'anonymous', remote: '127.0.0.1' };
    expect(secretEvents(team)).toEqual([
      expect.objectContaining({ event: 'registry.secret.set', address: team, type: 'ORG', actor }),
      expect.objectContaining({ event: 'registry.secret.set', address: team, actor }),
      expect.objectContaining({ event: 'registry.secret.removed', address: team, actor, reason: 'removed' }),
    ]);
    expect(journalText(gw)).not.toContain(SECRET);
    expect(journalText(gw)).not.toContain(stored!);
  });

  it('deleting the mailbox removes its secret, journaled', async () => {
    const team = await createMailbox(gw, 'ORG', 'closing');
    expect((await call(api, 'PUT', secretPath(team), { json: { secret: SECRET } })).status).toBe(204);
    const deleted = await call(api, 'DELETE', balPath(team));
    expect(deleted.status).toBe(200);
    expect(deleted.body).toMatchObject({ address: team, status: 'deleted' });
    expect(await gw.backends.redis.exists(secretKey(team))).toBe(0);
    expect((await call(api, 'GET', secretPath(team))).body).toMatchObject({ hasSecret: false });
    expect(secretEvents(team).map((e) => [e.event, e.reason])).toEqual([
      ['registry.secret.set', undefined],
      ['registry.secret.removed', 'mailbox_deleted'],
    ]);
    // A mailbox without a secret is deleted as before, with no secret event.
    const plain = await createMailbox(gw, 'ORG', 'plain');
    expect((await call(api, 'DELETE', balPath(plain))).status).toBe(200);
    expect(secretEvents(plain)).toEqual([]);
  });
});

describe('a mailbox deleted while its secret is being set', () => {
  it('keeps no secret: the write is undone and refused', async () => {
    const address = `race.${Date.now()}@op.mssante.test`;
    const at = new Date().toISOString();
    // The check sees the mailbox live; by the time the secret is written, it is deleted.
    const statuses: Bal['status'][] = ['active', 'deleted'];
    const registry = {
      get: (): Promise<Bal> =>
        Promise.resolve({
          address,
          type: 'ORG',
          owner: STRUCTURE,
          status: statuses.shift() ?? 'deleted',
          createdAt: at,
          updatedAt: at,
        }),
    };
    const journal = new MemoryAuditJournal();
    const store = gw.authenticator.secrets;
    const secrets = new BalSecrets({ registry, store, passwordTypes: ['ORG'], journal });
    await expect(secrets.set(address, SECRET, { kind: 'system', id: 'test' })).rejects.toMatchObject({
      code: 'BAL_INVALID_TRANSITION',
    });
    expect(await store.has(address)).toBe(false);
    expect(journal.events).toEqual([]);
  });
});

describe('refusals change nothing', () => {
  /** Sends the request, checks the problem and that no key and no journal line changed. */
  async function refused(
    method: string,
    path: string,
    json: unknown,
    status: number,
    code: string,
  ): Promise<string> {
    const keys = await gatewayKeys(gw);
    const journal = journalText(gw);
    const detail = expectProblem(await call(api, method, path, { json }), status, code);
    expect(await gatewayKeys(gw)).toEqual(keys);
    expect(journalText(gw)).toBe(journal);
    return detail;
  }

  it('refuses a PER mailbox, naming the setting that would allow it', async () => {
    const doctor = await createMailbox(gw, 'PER', 'dr');
    const detail = await refused('PUT', secretPath(doctor), { secret: SECRET }, 409, 'SECRET_NOT_ALLOWED');
    expect(detail).toBe(
      `${doctor} is a PER mailbox; only the types in auth.passwordTypes (now: ORG) may have a secret ` +
        '(PLAIN/LOGIN). To allow it, add PER to auth.passwordTypes and restart the gateway (not advised: ' +
        'ARCHITECTURE.md §4 keeps PER mailboxes to Pro Santé Connect tokens and certificates)',
    );
    expect((await call(api, 'GET', secretPath(doctor))).body).toEqual({
      address: doctor,
      type: 'PER',
      hasSecret: false,
      allowed: false,
    });
  });

  it('refuses an unknown or deleted mailbox', async () => {
    const absent = 'nobody.here@op.mssante.test';
    expect(await refused('PUT', secretPath(absent), { secret: SECRET }, 404, 'BAL_NOT_FOUND')).toBe(
      `no mailbox ${absent} in the registry (mssgw bal list, or GET /v1/bals, lists them)`,
    );
    await refused('DELETE', secretPath(absent), undefined, 404, 'BAL_NOT_FOUND');
    expectProblem(await call(api, 'GET', secretPath(absent)), 404, 'BAL_NOT_FOUND');

    const gone = await createMailbox(gw, 'ORG', 'gone');
    expect((await call(api, 'DELETE', balPath(gone))).status).toBe(200);
    expect(await refused('PUT', secretPath(gone), { secret: SECRET }, 409, 'BAL_INVALID_TRANSITION')).toBe(
      `${gone} is deleted: a deleted mailbox takes no secret`,
    );
  });

  it.each([
    ['too short', 'elevenchars', 'the secret is too short'],
    ['too long', 'x'.repeat(1025), 'the secret is too long'],
    ['too long in UTF-8 bytes', 'é'.repeat(513), 'the secret is too long'],
  ])('refuses a secret %s, stating the limits', async (_name, secret, start) => {
    const team = await createMailbox(gw, 'ORG', 'limits');
    expect(await refused('PUT', secretPath(team), { secret }, 400, 'SECRET_INVALID')).toBe(
      `${start}: a mailbox secret has 12 characters at least and 1024 bytes (UTF-8) at most`,
    );
  });

  it('refuses a secret no PLAIN/LOGIN client could send, without quoting it', async () => {
    const team = await createMailbox(gw, 'ORG', 'chars');
    for (const secret of ['line one\nline two', 'with a NUL \0 inside', 'carriage\rreturn here']) {
      const detail = await refused('PUT', secretPath(team), { secret }, 400, 'SECRET_INVALID');
      expect(detail).toBe(
        'the secret holds NUL, CR or LF, which no PLAIN/LOGIN client can send; choose another',
      );
    }
    // Twelve characters are enough, however many bytes they take.
    expect((await call(api, 'PUT', secretPath(team), { json: { secret: 'é'.repeat(12) } })).status).toBe(204);
  });

  it('refuses a malformed body', async () => {
    const team = await createMailbox(gw, 'ORG', 'body');
    expect(await refused('PUT', secretPath(team), {}, 400, 'REQUEST_INVALID')).toBe(
      'body.secret is required',
    );
    const nested = { secret: { value: SECRET } };
    expect(await refused('PUT', secretPath(team), nested, 400, 'REQUEST_INVALID')).toBe(
      'body.secret must be string',
    );
    expect(
      await refused('PUT', secretPath(team), { secret: SECRET, hash: 'x' }, 400, 'REQUEST_INVALID'),
    ).toBe('body.hash is not a known field; remove it');
  });
});
