import { randomUUID } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { startAdminHarness, type AdminHarness } from '../helpers/admin-harness.js';
import { ADELI_C, FINESS, RPPS_A, RPPS_B } from '../helpers/admin-rights.js';

const TOKEN = 'rights-cli-token-0123456789abcdef';

let h: AdminHarness;
/** Global options reaching the harness's API. */
let api: string[];

beforeAll(async () => {
  h = await startAdminHarness({ token: TOKEN });
  const dir = path.join(inject('scratchDir'), `rights-cli-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  const tokenFile = path.join(dir, 'admin.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  api = ['--api', h.url, '--token-file', tokenFile];
});

afterAll(async () => {
  await h.close();
});

/** BALs are created through the registry: the harness's API wants the token. */
async function bal(type: 'PER' | 'ORG' | 'APP', owner: string): Promise<string> {
  const address = `${type.toLowerCase()}.${randomUUID().slice(0, 8)}@op.mssante.test`;
  await h.registry.create({ address, type, owner }, { kind: 'system', id: 'test' });
  return address;
}

describe('mssgw rights', () => {
  it('grants, lists, shows what a person may open, and revokes', async () => {
    const per = await bal('PER', RPPS_A);
    const org = await bal('ORG', FINESS);
    const expires = '2099-01-01T00:00:00Z';
    const granted = await mssgw([
      ...api,
      ...['rights', 'grant', per, '--delegate', RPPS_B, '--scope', 'read', '--scope', 'send'],
      ...['--expires', expires],
    ]);
    expect(granted).toMatchObject({ code: 0, stderr: '' });
    expect(granted.stdout).toBe(
      `granted delegate to person ${RPPS_B} (read+send, until 2099-01-01T00:00:00.000Z) on ${per}\n`,
    );
    const member = await mssgw([...api, 'rights', 'grant', org, '--member', RPPS_B, '--json']);
    expect(member.code).toBe(0);
    expect(JSON.parse(member.stdout)).toMatchObject({
      address: org,
      right: 'member',
      scopes: ['read', 'send'],
    });

    const listed = await mssgw([...api, 'rights', 'list', per]);
    expect(listed.code).toBe(0);
    const [header, row, ...rest] = listed.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^RIGHT +SUBJECT +SCOPES +EXPIRES +GRANTED-BY$/);
    expect(row).toMatch(new RegExp(`^delegate +${RPPS_B} +read\\+send +2099-01-01T00:00:00.000Z +cli:\\S+$`));
    expect(rest).toEqual([]);

    const forPerson = await mssgw([...api, 'rights', 'for-person', RPPS_B]);
    expect(forPerson.code).toBe(0);
    const lines = forPerson.stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^ADDRESS +TYPE +STATUS +RIGHT +SCOPES +EXPIRES$/);
    expect(lines.slice(1).sort()).toEqual(
      [
        expect.stringMatching(
          new RegExp(`^${org} +ORG +active +member +read\\+send +-$`),
        ) as unknown as string,
        expect.stringMatching(
          new RegExp(`^${per} +PER +active +delegate +read\\+send +2099-`),
        ) as unknown as string,
      ].sort(),
    );
    const json = JSON.parse(
      (await mssgw([...api, 'rights', 'for-person', RPPS_A, '--json'])).stdout,
    ) as object;
    expect(json).toEqual({
      nationalId: RPPS_A,
      items: [{ bal: per, type: 'PER', status: 'active', right: 'owner', scopes: ['read', 'send'] }],
    });

    const revoked = await mssgw([...api, 'rights', 'revoke', per, '--person', RPPS_B]);
    expect(revoked).toMatchObject({ code: 0, stdout: `revoked delegate of person ${RPPS_B} on ${per}\n` });
    expect((await mssgw([...api, 'rights', 'list', per])).stdout).toBe(`no rights granted on ${per}\n`);
    expect((await mssgw([...api, 'rights', 'for-person', ADELI_C])).stdout).toBe(
      `person ${ADELI_C} may open no mailbox\n`,
    );
    expect(
      h
        .journal()
        .filter((e) => e.event.startsWith('registry.right.'))
        .map((e) => e.actor),
    ).toEqual([
      expect.objectContaining({ kind: 'cli' }),
      expect.objectContaining({ kind: 'cli' }),
      expect.objectContaining({ kind: 'cli' }),
    ]);
  });

  it('binds an application certificate to an APP mailbox', async () => {
    const app = await bal('APP', FINESS);
    const dn = 'CN=lps.hopital.test, O=Hopital Exemple, C=FR';
    const granted = await mssgw([...api, 'rights', 'grant', app, '--application-dn', dn]);
    expect(granted).toMatchObject({ code: 0, stderr: '' });
    expect(granted.stdout).toMatch(
      /^granted application to certificate "C=FR,CN=lps.hopital.test,O=Hopital Exemple"/,
    );
    const revoked = await mssgw([
      ...api,
      'rights',
      'revoke',
      app,
      '--application-dn',
      'cn=lps.hopital.test,o=Hopital Exemple,c=FR',
    ]);
    expect(revoked.code).toBe(0);
  });

  it.each([
    [['rights', 'grant', 'X', '--delegate', RPPS_B, '--member', RPPS_B], /exactly one of --delegate/],
    [['rights', 'grant', 'X', '--scope', 'read'], /exactly one of --delegate/],
    [['rights', 'grant', 'X', '--delegate', RPPS_B, '--scope', 'admin'], /give read or send/],
    [['rights', 'revoke', 'X'], /exactly one of --person ID or --application-dn DN/],
    [['rights', 'list'], /missing required argument/],
  ])('mssgw %j is a usage error (exit 2), sending nothing', async (args, message) => {
    const before = await h.keySpace();
    const run = await mssgw([...api, ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
    expect(await h.keySpace()).toEqual(before);
  });

  it('reports a refusal of the API with its reason (exit 1) and changes nothing', async () => {
    const per = await bal('PER', RPPS_A);
    const before = await h.keySpace();
    const run = await mssgw([...api, 'rights', 'grant', per, '--member', RPPS_B]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^error: right member does not apply to .* give other people right delegate \(RIGHT_NOT_APPLICABLE\)\n$/,
    );
    const noScope = await mssgw([...api, 'rights', 'grant', per, '--delegate', RPPS_B]);
    expect(noScope).toMatchObject({ code: 1 });
    expect(noScope.stderr).toMatch(
      /a delegate needs at least one scope: read, send, or both \(RIGHT_INVALID\)/,
    );
    expect(await h.keySpace()).toEqual(before);
  });
});
