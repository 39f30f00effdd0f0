import { request } from 'node:https';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { ConfigError, loadConfig } from '../../src/config/index.js';
import { freePort } from '../helpers/free-port.js';
import { identity, pkiFile, startTestGateway, testSettings, uniqueBal } from '../helpers/gateway.js';
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
  const port = await freePort();
  gw = await startTestGateway({
    overrides: {
      publication: {
        enabled: true,
        devDirectory: { enabled: true, port },
        retryInitialSeconds: 0.2,
        retryMaxSeconds: 1,
        maxAttempts: 2,
      },
    },
  });
  base = `https://localhost:${port}/fhir`;
});
afterAll(async () => {
  await gw?.stop();
});

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** An HTTPS request to the stand-in, with a client certificate (`peer-trusted`) or none. */
function call(
  url: string,
  options: { method?: string; cert?: boolean; body?: string } = {},
): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: options.method ?? 'GET',
        ca: pkiFile('ca/root.crt'),
        ...(options.cert === false ? {} : identity('peer-trusted')),
        headers: options.body ? { 'content-type': 'application/fhir+json' } : {},
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
        );
      },
    );
    req.on('error', reject);
    req.end(options.body);
  });
}

const byMailbox = (type: string, address: string) =>
  call(`${base}/${type}?mailbox=${encodeURIComponent(address)}`);

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
    const byId = await call(
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
    const unknown = await call(
      `${base}/Practitioner?identifier=${encodeURIComponent(`${PERSON_SYSTEM}|not-an-id`)}`,
      {
        method: 'PATCH',
        body: patch,
      },
    );
    expect(unknown).toMatchObject({ status: 404, body: { resourceType: 'OperationOutcome' } });
    const known = `${base}/Practitioner?identifier=${encodeURIComponent(`${PERSON_SYSTEM}|810000000088`)}`;
    expect((await call(known, { method: 'PATCH', body: patch })).status).toBe(422);
    expect((await call(known, { method: 'PATCH' })).status).toBe(415);
    await expect(call(known, { cert: false })).rejects.toThrow();
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
