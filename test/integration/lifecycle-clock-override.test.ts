import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { buildAdminApi } from '../../src/admin/index.js';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { createLogger } from '../../src/observability/index.js';
import { runMssgwInProcess } from '../helpers/admin-cli.js';
import { adminOf } from '../helpers/admin-secrets.js';
import { directoryCall, startDevDirectoryGateway } from '../helpers/dev-directory.js';
import { uniqueBal } from '../helpers/gateway.js';
import { eventually, inboxMessages } from '../helpers/mailbox.js';
import { gatewayClient } from '../helpers/imap-clients.js';

/**
 * Issue #14 item 9, the clock override of the development walk-through: on a running development
 * gateway publishing to its directory stand-in, `mssgw lifecycle run --at` shows the day-30
 * warning, the day-45 unpublication, and the republication at the owner's next login.
 */
const DAY = 86_400_000;
const OWNER = `8${String(Math.floor(Math.random() * 1e11)).padStart(11, '0')}`;
const system = { kind: 'system', id: 'lifecycle-clock-test' } as const;
let gw: Gateway;
let directoryBase: string;

beforeAll(async () => {
  ({ gw, base: directoryBase } = await startDevDirectoryGateway());
});
afterAll(async () => {
  await gw?.stop();
});

/** How many Practitioner entries the stand-in lists for this address (mutual TLS, as the tests use). */
async function listed(address: string): Promise<number> {
  const answer = await directoryCall(`${directoryBase}/Practitioner?mailbox=${encodeURIComponent(address)}`);
  return answer.body.total as number;
}

const mssgw = (...args: string[]) => runMssgwInProcess(['--api', adminOf(gw).url, ...args]);

async function balShowState(address: string): Promise<string> {
  const run = await mssgw('bal', 'show', address);
  expect(run.code).toBe(0);
  return /^ {2}state:\s+(\S+)$/m.exec(run.stdout)?.[1] ?? `no state in: ${run.stdout}`;
}

describe('mssgw lifecycle run --at (development clock override)', () => {
  it('shows publication, the day-30 warning, the day-45 unpublication and the republication at the next login', async () => {
    const bal = uniqueBal('walkthrough');
    await gw.registry.create({ address: bal, type: 'PER', owner: OWNER }, system);
    await eventually(
      () => balShowState(bal),
      (s) => s === 'published',
      60_000,
    );
    expect(await listed(bal)).toBe(1);
    const created = Date.now();

    const day31 = await mssgw('lifecycle', 'run', '--at', new Date(created + 31 * DAY).toISOString());
    expect(day31.stderr).toBe('');
    expect(day31.code).toBe(0);
    expect(day31.stdout).toMatch(
      /^lifecycle run \d{4}-\d{2}-\d{2} as of .*: done, \d+ step\(s\) \(.*warned \d+/,
    );
    const inbox = await eventually(
      () => inboxMessages(bal),
      (m) => m.length === 1,
      60_000,
    );
    expect(inbox[0]!.toString('latin1')).toMatch(/^Auto-Submitted: auto-generated/m);
    expect(await balShowState(bal)).toBe('published');

    const day46 = await mssgw(
      'lifecycle',
      'run',
      '--at',
      new Date(created + 46 * DAY).toISOString(),
      '--json',
    );
    expect(day46.code).toBe(0);
    const summary = JSON.parse(day46.stdout) as { status: string; outcomes: Record<string, number> };
    expect(summary.status).toBe('done');
    expect(summary.outcomes.unpublished).toBeGreaterThanOrEqual(1);
    await eventually(
      () => balShowState(bal),
      (s) => s === 'unpublished-inactive',
      60_000,
    );
    await eventually(
      () => listed(bal),
      (n) => n === 0,
      60_000,
    );

    // The owner comes back: an IMAP login with a development token republishes at once.
    const token = await mintDevToken({ pkiDir: inject('pkiDir'), subject: OWNER, ttlSeconds: 600 });
    const client = await gatewayClient(gw.addresses.imapTls!.port, bal, token, 'implicit');
    await client.logout();
    await eventually(
      () => balShowState(bal),
      (s) => s === 'published',
      60_000,
    );
    await eventually(
      () => listed(bal),
      (n) => n === 1,
      60_000,
    );
  });

  it('rejects an instant that is not ISO 8601, and runs nothing', async () => {
    const run = await mssgw('lifecycle', 'run', '--at', 'next tuesday');
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(/--at/);
  });

  it('is refused in production mode with a problem naming the reason, and runs nothing', async () => {
    const runs: Date[] = [];
    const app = buildAdminApi({
      registry: gw.registry,
      logger: createLogger({ level: 'silent' }),
      lifecycleRun: {
        development: false,
        // Records a call, which must not happen: production never runs at another instant.
        runAt: (at) => {
          runs.push(at);
          return Promise.reject(new Error('must not run'));
        },
      },
    });
    try {
      const answer = await app.inject({
        method: 'POST',
        url: '/v1/lifecycle/runs',
        payload: { at: new Date(Date.now() + 46 * DAY).toISOString() },
      });
      expect(answer.statusCode).toBe(403);
      expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(answer.json()).toMatchObject({
        code: 'LIFECYCLE_RUN_DEVELOPMENT_ONLY',
        status: 403,
        detail: expect.stringMatching(
          /^mode is production: the lifecycle runs daily at the real time only/,
        ) as unknown,
      });
      expect(runs).toEqual([]);
    } finally {
      await app.close();
    }
  });
});
