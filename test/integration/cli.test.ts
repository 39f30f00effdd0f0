import { randomUUID } from 'node:crypto';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inject } from 'vitest';
import { runMssgw, runMssgwInProcess as mssgw } from '../helpers/admin-cli.js';
import { startAdminHarness, uniqueAddress, type AdminHarness } from '../helpers/admin-harness.js';
import { freePort } from '../helpers/free-port.js';

const TOKEN = 'cli-test-token-0123456789abcdef';
const PERSON = '810001234567';
const FINESS = '1750712184';

let h: AdminHarness;
let dir: string;
let tokenFile: string;
/** Global options reaching the harness's API. */
let api: string[];

beforeAll(async () => {
  h = await startAdminHarness({ token: TOKEN });
  dir = path.join(inject('scratchDir'), `cli-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  tokenFile = path.join(dir, 'admin.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  api = ['--api', h.url, '--token-file', tokenFile];
});

afterAll(async () => {
  await h.close();
});

describe('mssgw bal: happy paths', () => {
  it('creates, shows and lists a mailbox, for people and for scripts', async () => {
    const address = uniqueAddress('dr.durand');
    const created = await mssgw([
      ...api,
      'bal',
      'create',
      address.toUpperCase(),
      '--type',
      'per',
      '--owner',
      PERSON,
    ]);
    expect(created).toMatchObject({ code: 0, stderr: '' });
    expect(created.stdout).toMatch(new RegExp(`^created ${address}\\naddress: +${address}\\ntype: +PER\\n`));
    expect(created.stdout).toMatch(/\nowner: +810001234567\nstatus: +active\ncreatedAt: +\d{4}-\d\d-\d\dT/);

    const shown = await mssgw([...api, 'bal', 'show', address]);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(
      new RegExp(`^address: +${address}\\ntype: +PER\\nowner: +${PERSON}\\nstatus: +active\\n`),
    );

    const json = await mssgw([...api, 'bal', 'show', address, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ address, type: 'PER', owner: PERSON, status: 'active' });

    const listed = await mssgw([...api, 'bal', 'list', '--type', 'PER']);
    expect(listed.code).toBe(0);
    const [header, ...rows] = listed.stdout.trimEnd().split('\n');
    expect(header).toMatch(/^ADDRESS +TYPE +STATUS +OWNER +CREATED$/);
    expect(rows.some((r) => new RegExp(`^${address} +PER +active +${PERSON} +\\d{4}-`).test(r))).toBe(true);

    const listedJson = JSON.parse((await mssgw([...api, 'bal', 'list', '--json'])).stdout) as {
      items: Array<{ address: string }>;
    };
    expect(listedJson.items.map((b) => b.address)).toContain(address);

    expect(
      h.journal().find((e) => e.event === 'registry.bal.created' && e.address === address),
    ).toMatchObject({
      actor: { kind: 'cli' },
    });
  });

  it('suspends with a reason, resumes, and deletes with --yes', async () => {
    const address = uniqueAddress('secretariat');
    expect((await mssgw([...api, 'bal', 'create', address, '--type', 'ORG', '--owner', FINESS])).code).toBe(
      0,
    );

    const suspended = await mssgw([...api, 'bal', 'suspend', address, '--reason', 'structure closed']);
    expect(suspended).toMatchObject({ code: 0, stdout: `${address} is now suspended\n` });
    expect((await mssgw([...api, 'bal', 'show', address])).stdout).toMatch(
      /\nstatusReason: +structure closed\n/,
    );
    expect(await mssgw([...api, 'bal', 'resume', address])).toMatchObject({
      code: 0,
      stdout: `${address} is now active\n`,
    });
    expect(await mssgw([...api, 'bal', 'delete', address, '--yes'])).toMatchObject({
      code: 0,
      stdout: `${address} is now deleted\n`,
    });
  });

  it('takes the API URL and token file from the configuration, and the URL from MSSGW_ADMIN_URL', async () => {
    const configDir = path.join(dir, `config-${randomUUID().slice(0, 8)}`);
    mkdirSync(configDir);
    const { port } = new URL(h.url);
    writeFileSync(
      path.join(configDir, 'default.yaml'),
      `admin:\n  host: 0.0.0.0\n  port: ${port}\n  tokenFile: ${tokenFile}\n`,
    );
    // A real process: the environment reaches the program through process.env.
    const [viaConfig, viaEnv] = await Promise.all([
      runMssgw(['bal', 'list'], { MSSGW_CONFIG_DIR: configDir }),
      runMssgw(['--token-file', tokenFile, 'bal', 'list'], { MSSGW_ADMIN_URL: h.url }),
    ]);
    expect(viaConfig).toMatchObject({ code: 0, stderr: '' });
    expect(viaConfig.stdout).toMatch(/^ADDRESS +TYPE +STATUS +OWNER +CREATED\n/);
    expect(viaEnv).toMatchObject({ code: 0, stderr: '' });
    expect(viaEnv.stdout).toBe(viaConfig.stdout);
  });
});

describe('mssgw bal: refusals', () => {
  const existing = uniqueAddress('existing');

  beforeAll(async () => {
    expect((await mssgw([...api, 'bal', 'create', existing, '--type', 'CAB', '--owner', FINESS])).code).toBe(
      0,
    );
  });

  it.each([
    [
      'unknown type',
      ['bal', 'create', uniqueAddress(), '--type', 'PAT', '--owner', PERSON],
      /^error: unknown mailbox type "PAT": use PER .*\(BAL_INVALID_TYPE\)\n$/,
    ],
    [
      'address outside our domains',
      ['bal', 'create', 'x@other-op.mssante.fr', '--type', 'PER', '--owner', PERSON],
      /is not operated by this gateway; use one of: .*\(BAL_DOMAIN_NOT_OURS\)\n$/,
    ],
    [
      'malformed address',
      ['bal', 'create', 'not-an-address', '--type', 'PER', '--owner', PERSON],
      /has no "@"; give local@domain \(BAL_INVALID_ADDRESS\)\n$/,
    ],
    [
      'bad owner',
      ['bal', 'create', uniqueAddress(), '--type', 'PER', '--owner', '12345'],
      /8 followed by the 11-digit RPPS number.*\(BAL_INVALID_OWNER\)\n$/,
    ],
    [
      'duplicate',
      ['bal', 'create', existing, '--type', 'CAB', '--owner', FINESS],
      /already exists \(status active\) \(BAL_EXISTS\)\n$/,
    ],
    [
      'absent mailbox',
      ['bal', 'show', uniqueAddress('absent')],
      /^error: no mailbox absent\..* in the registry \(mssgw bal list, or GET \/v1\/bals, lists them\) \(BAL_NOT_FOUND\)\n$/,
    ],
    [
      'resume of an active mailbox',
      ['bal', 'resume', existing],
      /is already active \(BAL_INVALID_TRANSITION\)\n$/,
    ],
  ])('%s: exits 1 saying what to fix, and changes nothing', async (_name, args, message) => {
    const before = await h.keySpace();
    const run = await mssgw([...api, ...args]);
    expect(run).toMatchObject({ code: 1, stdout: '' });
    expect(run.stderr).toMatch(message);
    expect(await h.keySpace()).toEqual(before);
  });

  it('exits 1 with UNAUTHENTICATED when the token is wrong', async () => {
    const wrong = path.join(dir, 'wrong.token');
    writeFileSync(wrong, 'not-the-token\n');
    const run = await mssgw(['--api', h.url, '--token-file', wrong, 'bal', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^error: the bearer token is not the one in admin\.tokenFile \(UNAUTHENTICATED\)\n$/,
    );
  });

  it('refuses `bal delete` without --yes as a usage error (exit 2), sending nothing', async () => {
    const before = await h.keySpace();
    const run = await mssgw([...api, 'bal', 'delete', existing]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/^error: refusing to delete .* without --yes: deletion is final/);
    expect(await h.keySpace()).toEqual(before);
  });

  it.each([
    [['bal', 'create', 'x@op.mssante.test', '--type', 'PER'], /required option '--owner <id>' not specified/],
    [['bal', 'list', '--status', 'asleep'], /Allowed choices are active, suspended, deleted/],
    [['bal', 'list', '--limit', '0'], /give a whole number from 1 to 1000/],
    [['bal', 'frobnicate'], /unknown command 'frobnicate'/],
    [['--api', 'ftp://x', 'bal', 'list'], /give an http:\/\/ or https:\/\/ URL/],
  ])('mssgw %j is a usage error (exit 2)', async (args, message) => {
    const run = await mssgw([...api.slice(2), ...args]);
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(message);
  });

  it('exits 3 naming the URL when the API cannot be reached', async () => {
    const url = `http://127.0.0.1:${await freePort()}`;
    const run = await mssgw(['--api', url, '--token-file', tokenFile, 'bal', 'list']);
    expect(run.code).toBe(3);
    expect(run.stderr).toContain(`cannot reach the admin API at ${url} (ECONNREFUSED)`);
    expect(run.stderr).toContain('the gateway must be running (npm start)');
  });

  it('exits 1 when the token file cannot be read', async () => {
    const run = await mssgw(['--api', h.url, '--token-file', path.join(dir, 'missing.token'), 'bal', 'list']);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/cannot read the admin token file .*missing\.token \(ENOENT\)/);
  });
});

describe('mssgw as a process', () => {
  // The commands are tested in process above (runMssgwInProcess): the same program, through the
  // I/O it takes. What only a process shows is here: each exit code is the process's, and what was
  // written reaches the pipes before it exits. In parallel: each start costs seconds on a busy machine.
  it('ends with exit code 0, 1, 2 or 3 and its whole message', async () => {
    const wrong = path.join(dir, 'wrong-process.token');
    writeFileSync(wrong, 'not-the-token\n');
    const unreachable = `http://127.0.0.1:${await freePort()}`;
    const [shown, refused, usage, down] = await Promise.all([
      runMssgw([...api, 'bal', 'list', '--json']),
      runMssgw(['--api', h.url, '--token-file', wrong, 'bal', 'list']),
      runMssgw([...api, 'bal', 'frobnicate']),
      runMssgw(['--api', unreachable, '--token-file', tokenFile, 'bal', 'list']),
    ]);
    expect(shown).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(shown.stdout)).toMatchObject({ items: expect.any(Array) as unknown });
    expect(refused).toMatchObject({
      code: 1,
      stdout: '',
      stderr: 'error: the bearer token is not the one in admin.tokenFile (UNAUTHENTICATED)\n',
    });
    expect(usage).toMatchObject({ code: 2, stdout: '' });
    expect(usage.stderr).toMatch(/unknown command 'frobnicate'/);
    expect(down).toMatchObject({ code: 3, stdout: '' });
    expect(down.stderr).toContain(`cannot reach the admin API at ${unreachable} (ECONNREFUSED)`);
  });
});

describe('bin/mssgw.js', () => {
  it('explains how to build when dist/ is missing, and exits 1', () => {
    const copy = path.join(dir, `bin-${randomUUID().slice(0, 8)}`);
    mkdirSync(path.join(copy, 'bin'), { recursive: true });
    writeFileSync(path.join(copy, 'package.json'), '{ "type": "module" }\n');
    copyFileSync(
      fileURLToPath(new URL('../../bin/mssgw.js', import.meta.url)),
      path.join(copy, 'bin/mssgw.js'),
    );
    const run = spawnSync(process.execPath, [path.join(copy, 'bin/mssgw.js'), 'bal', 'list'], {
      encoding: 'utf8',
    });
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('dist/cli/cli-main.js is missing');
    expect(run.stderr).toContain('npm run build');
  });
});
