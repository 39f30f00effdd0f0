import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { directoryCall, startDevDirectoryGateway } from '../helpers/dev-directory.js';
import { testSettings, uniqueBal } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';

/**
 * The development stand-in of the national directory (issue #14 item 9): the gateway starts it,
 * publishes to it over real mutual TLS, and an operator looks mailboxes up in it over HTTPS.
 */
const ACTOR = { kind: 'system' as const, id: 'dev-directory-test' };
const PERSON_SYSTEM = 'urn:oid:1.2.250.1.71.4.2.1';
let gw: Gateway;
let base: string;

beforeAll(async () => {
  ({ gw, base } = await startDevDirectoryGateway({ maxAttempts: 2 }));
});
afterAll(async () => {
  await gw?.stop();
});

const byMailbox = (type: string, address: string) =>
  directoryCall(`${base}/${type}?mailbox=${encodeURIComponent(address)}`);

describe('development directory stand-in', () => {
  it('receives the publication of a new mailbox, its unpublication on suspension and its republication', async () => {
    const owner = '810000000077';
    const address = uniqueBal('annuaire');
    await gw.registry.create({ address, type: 'PER', owner }, ACTOR);
    const published = await eventually(
      () => byMailbox('Practitioner', address),
      (a) => a.body.total === 1,
      60_000,
    );
    const entry = (published.body.entry as Array<{ resource: Record<string, unknown> }>)[0]!.resource;
    expect(entry).toMatchObject({
      resourceType: 'Practitioner',
      identifier: [{ system: PERSON_SYSTEM, value: owner }],
      telecom: [expect.objectContaining({ system: 'email', value: address })],
    });
    expect(await gw.publication!.state(address)).toMatchObject({ state: 'published' });
    // A look-up by identifier finds the same resource.
    const byId = await directoryCall(
      `${base}/Practitioner?identifier=${encodeURIComponent(`${PERSON_SYSTEM}|${owner}`)}`,
    );
    expect(byId.body).toMatchObject({ resourceType: 'Bundle', total: 1 });

    await gw.registry.suspend(address, ACTOR, 'test');
    await eventually(
      () => byMailbox('Practitioner', address),
      (a) => a.body.total === 0,
      60_000,
    );
    expect(await gw.publication!.state(address)).toMatchObject({ state: 'unpublished', reason: 'suspended' });
    await gw.registry.resume(address, ACTOR);
    await eventually(
      () => byMailbox('Practitioner', address),
      (a) => a.body.total === 1,
      60_000,
    );
  });

  it('honours the contract: 404 for an unknown owner, 415 without FHIR JSON, 422 for a replace of nothing, a client certificate required', async () => {
    const patch = JSON.stringify({
      resourceType: 'Parameters',
      parameter: [
        {
          name: 'operation',
          part: [
            { name: 'type', valueCode: 'replace' },
            {
              name: 'path',
              valueString: "Practitioner.telecom.where(system = 'email' and value = 'x@op.mssante.test')",
            },
            { name: 'value', valueContactPoint: { system: 'email', value: 'x@op.mssante.test' } },
          ],
        },
      ],
    });
    const unknown = await directoryCall(
      `${base}/Practitioner?identifier=${encodeURIComponent(`${PERSON_SYSTEM}|not-an-id`)}`,
      {
        method: 'PATCH',
        body: patch,
      },
    );
    expect(unknown).toMatchObject({ status: 404, body: { resourceType: 'OperationOutcome' } });
    const known = `${base}/Practitioner?identifier=${encodeURIComponent(`${PERSON_SYSTEM}|810000000088`)}`;
    expect((await directoryCall(known, { method: 'PATCH', body: patch })).status).toBe(422);
    expect((await directoryCall(known, { method: 'PATCH' })).status).toBe(415);
    await expect(directoryCall(known, { cert: false })).rejects.toThrow();
  });

  it('is refused in production mode, naming the setting', () => {
    let caught: unknown;
    try {
      loadConfig({
        configDir: '/nonexistent',
        env: {},
        overrides: {
          ...testSettings(),
          mode: 'production',
          publication: { enabled: true, devDirectory: { enabled: true } },
        },
      });
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    expect((caught as ConfigError).issues).toContainEqual(
      expect.objectContaining({
        key: 'publication.devDirectory.enabled',
        message: expect.stringMatching(/^mode is production but the development stand-in/) as unknown,
      }),
    );
  });
});
