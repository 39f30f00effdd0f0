import { afterEach, describe, expect, it } from 'vitest';
import type { ActivityChannel } from '../../src/registry/index.js';
import { startAdminHarness, type AdminHarness } from '../helpers/admin-harness.js';
import { balPath, call, expectProblem } from '../helpers/admin-http.js';
import { FINESS, RPPS_A, createBal } from '../helpers/admin-rights.js';

let harness: AdminHarness | undefined;

async function start(): Promise<AdminHarness> {
  harness = await startAdminHarness();
  return harness;
}

afterEach(async () => {
  await harness?.close();
  harness = undefined;
});

const at = (iso: string) => new Date(iso);

describe('mailbox activity', () => {
  it('records the last use per channel and overall, and never moves a timestamp backwards', async () => {
    const h = await start();
    const address = await createBal(h, 'PER', RPPS_A);
    expect((await call(h, 'GET', balPath(address, '/activity'))).body).toEqual({ address, channels: {} });

    expect(await h.registry.recordActivity(address.toUpperCase(), 'imap', at('2026-03-02T08:00:00Z'))).toBe(
      true,
    );
    await h.registry.recordActivity(address, 'submission', at('2026-03-01T09:00:00Z'));
    // Late records (an earlier instant arriving after a later one) change nothing.
    await h.registry.recordActivity(address, 'imap', at('2026-03-01T07:00:00Z'));
    await h.registry.recordActivity(address, 'submission', at('2026-02-28T23:00:00Z'));

    const answer = await call(h, 'GET', balPath(address, '/activity'));
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      address,
      lastActivityAt: '2026-03-02T08:00:00.000Z',
      channels: { imap: '2026-03-02T08:00:00.000Z', submission: '2026-03-01T09:00:00.000Z' },
    });
    const score = await h.redis.zscore(`${h.prefix}bals:last-activity`, address);
    expect(Number(score)).toBe(Date.parse('2026-03-02T08:00:00Z'));
  });

  it('keeps the maximum whatever the order of concurrent records', async () => {
    const h = await start();
    const address = await createBal(h, 'APP', FINESS);
    const base = Date.parse('2026-03-01T00:00:00Z');
    const channels: ActivityChannel[] = ['imap', 'submission', 'application'];
    const records = Array.from({ length: 90 }, (_, i) => ({
      channel: channels[i % 3]!,
      ms: base + ((i * 7919) % 90) * 60_000,
    }));
    await Promise.all(records.map((r) => h.registry.recordActivity(address, r.channel, new Date(r.ms))));
    const latest = (channel: ActivityChannel) =>
      new Date(Math.max(...records.filter((r) => r.channel === channel).map((r) => r.ms))).toISOString();
    const overall = new Date(Math.max(...records.map((r) => r.ms))).toISOString();
    expect(await h.registry.activity(address)).toEqual({
      address,
      lastActivityAt: overall,
      channels: {
        imap: latest('imap'),
        submission: latest('submission'),
        application: latest('application'),
      },
    });
  });

  it('records nothing for an unknown or deleted mailbox, and keeps the history of a deleted one', async () => {
    const h = await start();
    const address = await createBal(h, 'ORG', FINESS);
    await h.registry.recordActivity(address, 'imap', at('2026-03-01T10:00:00Z'));
    const before = await h.keySpace();
    expect(
      await h.registry.recordActivity('nobody@op.mssante.test', 'imap', at('2026-03-02T10:00:00Z')),
    ).toBe(false);
    expect(await h.keySpace()).toEqual(before);
    expectProblem(await call(h, 'GET', balPath('nobody@op.mssante.test', '/activity')), 404, 'BAL_NOT_FOUND');

    await call(h, 'DELETE', balPath(address));
    expect(await h.registry.recordActivity(address, 'imap', at('2026-03-03T10:00:00Z'))).toBe(false);
    expect((await call(h, 'GET', balPath(address, '/activity'))).body).toMatchObject({
      lastActivityAt: '2026-03-01T10:00:00.000Z',
    });
    // The inactivity index only holds live mailboxes.
    expect(await h.redis.zscore(`${h.prefix}bals:last-activity`, address)).toBeNull();
  });
});
