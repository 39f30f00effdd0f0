import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { runMssgwInProcess } from '../helpers/admin-cli.js';
import { PEER_DOMAIN, scratchDir, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { eventually } from '../helpers/mailbox.js';
import { peerMx } from '../helpers/smtp-clients.js';

/**
 * `mssgw queue list|show` print when a waiting job will really be attempted: the time BullMQ holds
 * it until, which is also the `nextAttemptAt` the worker wrote in the spool. The job's creation
 * time plus its last delay is not that time once BullMQ has moved the job again (a retry after an
 * attempt, a promote by `mssgw queue retry` followed by another failure).
 */
const system = { kind: 'system' as const, id: 'test' };
let gw: Gateway;
let api: string[];

beforeAll(async () => {
  // The store's LMTP socket does not exist: every local attempt fails and is retried in a minute.
  const lmtpDown = path.join(scratchDir('lmtp-down'), 'lmtp.sock');
  gw = await startTestGateway({
    overrides: {
      store: { lmtp: { path: lmtpDown } },
      delivery: { retryInitialSeconds: 60, retryMaxSeconds: 60 },
    },
  });
  api = ['--api', `http://127.0.0.1:${gw.addresses.admin!.port}`];
});
afterAll(async () => {
  await gw?.stop();
});

interface JobView {
  readonly id: string;
  readonly state: string;
  readonly nextAttemptAt?: string;
  readonly progress?: { readonly attempts: number; readonly nextAttemptAt?: string };
}

async function cli(...args: string[]): Promise<string> {
  const run = await runMssgwInProcess([...api, 'queue', ...args]);
  expect(run.code, run.stderr).toBe(0);
  return run.stdout;
}

const show = async (id: string) => JSON.parse(await cli('show', id, '--json')) as JobView;

describe('queue list and show: the next attempt time', () => {
  it('is the time the job is delayed until, after a retry and another failure too', async () => {
    const bal = uniqueBal('next');
    await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
    const info = await peerMx(gw.addresses.mx!.port).sendMail({
      envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
      raw: `From: <martin@${PEER_DOMAIN}>\r\nTo: <${bal}>\r\nSubject: later\r\n\r\nhello\r\n`,
    });
    const job = `${/queued as ([0-9a-z]+)$/.exec(info.response)![1]!}~local`;
    const delayedAfter = (attempts: number) =>
      eventually(
        () => show(job).catch(() => undefined),
        (j) => j?.state === 'delayed' && j.progress?.attempts === attempts,
      );
    const first = await delayedAfter(1);
    expect(first?.progress?.nextAttemptAt).toBeDefined();
    // Added with a delay counted from a moment before BullMQ's own clock reading: within a moment.
    const early = Date.parse(first!.progress!.nextAttemptAt!) - Date.parse(first!.nextAttemptAt!);
    expect(Math.abs(early)).toBeLessThan(1000);

    // Attempted again now (BullMQ promotes it), fails again, and BullMQ delays it again.
    const retriedAt = Date.now();
    expect(await cli('retry', job)).toMatch(new RegExp(`^retrying ${job} `));
    const second = await delayedAfter(2);
    const due = second?.progress?.nextAttemptAt;
    expect(due).toBeDefined();
    // A new time, set by the second attempt, after the retry.
    expect(Date.parse(due!)).toBeGreaterThan(retriedAt);
    // Moved to delayed until that very millisecond.
    expect(second?.nextAttemptAt).toBe(due);
    const listed = JSON.parse(await cli('list', '--state', 'delayed', '--json')) as { items: JobView[] };
    expect(listed.items.find((j) => j.id === job)?.nextAttemptAt).toBe(due);
    expect(await cli('list', '--state', 'delayed')).toContain(` next ${due}  `);
    expect(await cli('show', job)).toContain(`state       delayed, next attempt ${due}\n`);
  });
});
