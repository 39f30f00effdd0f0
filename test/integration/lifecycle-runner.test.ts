import { simpleParser } from 'mailparser';
import { afterEach, describe, expect, it } from 'vitest';
import { DAY_MS } from '../../src/lifecycle/index.js';
import { uniqueAddress } from '../helpers/admin-harness.js';
import { ACTOR, startLifecycleFixture, type LifecycleFixture } from '../helpers/lifecycle-fixture.js';
import { inboxMessages } from '../helpers/mailbox.js';

// 03:15 in Paris (winter): the default lifecycle.runAt.
const T0 = Date.parse('2026-01-05T02:15:00.000Z');
const HOUR = 3_600_000;
const runDay = (d: number) => T0 + d * DAY_MS;

let fixture: LifecycleFixture | undefined;
afterEach(async () => {
  await fixture?.close();
  fixture = undefined;
});

function start(): LifecycleFixture {
  fixture = startLifecycleFixture(new Date(T0 - 6 * HOUR).toISOString());
  return fixture;
}

/** A PER mailbox created now (the fixture's clock) and published since. */
async function publishedBal(f: LifecycleFixture, label: string, owner = '810000000001'): Promise<string> {
  const address = uniqueAddress(label);
  await f.registry.create({ address, type: 'PER', owner }, ACTOR);
  await f.directory.set(address, 'published', f.clock.now());
  return address;
}

async function runOn(f: LifecycleFixture, day: number) {
  f.clock.set(runDay(day));
  return f.runner.runOnce();
}

describe('daily lifecycle run', () => {
  it('warns at day 30 once, keeps the mailbox published at day 44, unpublishes it at day 45 once, republishes it at the first use', async () => {
    const f = start();
    const idle = await publishedBal(f, 'idle');
    const busy = await publishedBal(f, 'busy');

    for (let day = 1; day <= 29; day += 1) await runOn(f, day);
    expect(f.warnings.delivered).toEqual([]);

    // Day 20: the busy mailbox is used; its period starts again.
    await f.registry.recordActivity(busy, 'imap', new Date(runDay(20) + HOUR));

    const day30 = await runOn(f, 30);
    expect(day30).toMatchObject({ status: 'done', resumed: false, planned: 1, outcomes: { warned: 1 } });
    expect(f.warnings.delivered).toEqual([idle]);
    const inbox = await inboxMessages(idle);
    expect(inbox).toHaveLength(1);
    const warning = await simpleParser(inbox[0]!);
    // Warned at the day-30 run (2026-02-04 03:15 Paris): 15 days of notice, so the run of 19/02,
    // which is the day-45 run, the one that unpublishes it.
    expect(warning.subject).toBe('Votre adresse MSSanté sera dépubliée le 19/02/2026');
    expect(new Date(runDay(45)).toISOString()).toBe('2026-02-19T02:15:00.000Z');
    expect(warning.from?.value[0]?.address).toBe(`postmaster@${idle.split('@')[1]}`);

    for (let day = 31; day <= 44; day += 1) await runOn(f, day);
    expect(await f.directory.calls()).toEqual([]);
    expect(await f.directory.stateOf(idle)).toBe('published');
    expect(f.warnings.delivered).toEqual([idle]);

    const day45 = await runOn(f, 45);
    expect(day45.outcomes).toEqual({ unpublished: 1 });
    const calls = await f.directory.calls();
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ op: 'unpublishInactive', address: idle });
    expect(await f.directory.stateOf(idle)).toBe('unpublished-inactive');
    const [unpublished] = f.events('lifecycle.unpublished');
    expect(unpublished).toMatchObject({
      address: idle,
      reason: 'inactive',
      lastActivityAt: null,
      thresholdDays: 45,
      decidedAt: new Date(runDay(45)).toISOString(),
      directoryResponse: '200 OK: telecom deleted',
      evidence: { basis: 'creation', idleDays: 45, warnedAt: new Date(runDay(30)).toISOString() },
    });
    expect(await f.counter('mssgw_lifecycle_unpublications_total', { outcome: 'ok' })).toBe(1);
    expect(await f.counter('mssgw_lifecycle_warnings_total', { outcome: 'ok' })).toBe(1);

    // Day 46, before the run: the owner logs in. Republished at once, not at the next run.
    f.clock.set(runDay(45) + 5 * HOUR);
    await f.registry.recordActivity(idle, 'imap', f.clock.now());
    expect(await f.lifecycleActivity.onActivity(idle, 'imap', f.clock.now())).toBe('republished');
    expect((await f.directory.calls()).map((c) => `${c.op} ${c.address}`)).toEqual([
      `unpublishInactive ${idle}`,
      `republish ${idle}`,
    ]);
    expect(await f.directory.stateOf(idle)).toBe('published');
    expect(f.events('lifecycle.republished')).toMatchObject([{ address: idle, channel: 'imap' }]);
    expect(await f.counter('mssgw_lifecycle_republications_total', { outcome: 'ok' })).toBe(1);
    // A second use changes nothing more.
    expect(await f.lifecycleActivity.onActivity(idle, 'submission', f.clock.now())).toBe('none');

    for (let day = 46; day <= 50; day += 1) await runOn(f, day);
    expect(await f.directory.calls()).toHaveLength(2);
    expect(f.warnings.delivered).toEqual([idle]);
    // The busy mailbox, used an hour after the day-20 run, is warned by the first run 30 days later.
    await runOn(f, 51);
    expect(f.warnings.delivered).toEqual([idle, busy]);
    expect(await inboxMessages(idle)).toHaveLength(1);
  });

  it('never touches suspended or red-listed mailboxes, and activity never republishes them', async () => {
    const f = start();
    const suspended = await publishedBal(f, 'suspended');
    const redListed = await publishedBal(f, 'redlisted');
    await f.registry.suspend(suspended, ACTOR, 'contract ended');
    await f.directory.set(suspended, 'unpublished', f.clock.now());
    await f.directory.set(redListed, 'unpublished', f.clock.now(), true);

    for (const day of [30, 45, 60, 90]) {
      const summary = await runOn(f, day);
      expect(summary.planned).toBe(0);
      expect(summary.decisions).toEqual({ 'none:suspended': 1, 'none:red-listed': 1 });
    }
    await f.registry.recordActivity(redListed, 'imap', f.clock.now());
    expect(await f.lifecycleActivity.onActivity(redListed, 'imap', f.clock.now())).toBe('none');
    expect(await f.lifecycleActivity.onActivity(suspended, 'imap', f.clock.now())).toBe('none');
    expect(await f.directory.calls()).toEqual([]);
    expect(f.warnings.delivered).toEqual([]);
  });

  it('one run a day: a second run the same day does nothing again', async () => {
    const f = start();
    await publishedBal(f, 'idle');
    const first = await runOn(f, 30);
    f.clock.set(runDay(30) + 2 * HOUR);
    const second = await f.runner.runOnce();
    expect(first.outcomes).toEqual({ warned: 1 });
    expect(second).toMatchObject({ status: 'already-done', runId: first.runId, outcomes: { warned: 1 } });
    expect(f.warnings.delivered).toHaveLength(1);
    expect(f.events('lifecycle.run.started')).toHaveLength(1);
  });

  it('removes delegations at their expiry and journals it', async () => {
    const f = start();
    const bal = await publishedBal(f, 'delegator');
    const expiresAt = new Date(T0 + 2 * DAY_MS).toISOString();
    await f.registry.grant(
      bal,
      { right: 'delegate', person: '810000000002', scopes: ['read'], expiresAt },
      ACTOR,
    );
    await runOn(f, 1);
    expect(await f.registry.grants(bal)).toHaveLength(1);
    const summary = await runOn(f, 3);
    expect(summary.rightsExpired).toBe(1);
    expect(await f.registry.grants(bal)).toEqual([]);
    expect(f.events('registry.right.expired')).toMatchObject([{ address: bal, expiresAt }]);
    expect(f.events('lifecycle.rights.expired')).toMatchObject([{ count: 1 }]);
  });

  it('leaves alone a mailbox used between the plan and its step', async () => {
    const f = start();
    const first = await publishedBal(f, 'a-first');
    const second = await publishedBal(f, 'b-second');
    await runOn(f, 30);
    // While the first is being unpublished, the owner of the second logs in.
    f.directory.beforeAnswer = async (call) => {
      if (call.address === first) {
        await f.registry.recordActivity(second, 'submission', f.clock.now());
      }
    };
    const summary = await runOn(f, 45);
    expect(summary.planned).toBe(2);
    expect(summary.outcomes).toEqual({ unpublished: 1, superseded: 1 });
    expect((await f.directory.calls()).map((c) => c.address)).toEqual([first]);
    expect(f.events('lifecycle.step.superseded')).toMatchObject([
      { address: second, planned: 'unpublish-inactive', decision: 'none', reason: 'recently-used' },
    ]);
  });

  it('tries again the next day when the directory refuses, or the warning cannot be delivered', async () => {
    const f = start();
    const refused = await publishedBal(f, 'refused');
    const unreachable = await publishedBal(f, 'unreachable');
    f.warnings.failFor.add(unreachable);
    await runOn(f, 30);
    expect(f.warnings.delivered).toEqual([refused]);
    expect(f.events('lifecycle.warning.failed')).toMatchObject([{ address: unreachable }]);
    expect(await f.counter('mssgw_lifecycle_warnings_total', { outcome: 'error' })).toBe(1);
    f.warnings.failFor.clear();
    await runOn(f, 31);
    expect(f.warnings.delivered).toEqual([refused, unreachable]);

    f.directory.refuse.add(refused);
    await runOn(f, 45);
    expect(await f.directory.stateOf(refused)).toBe('published');
    expect(f.events('lifecycle.unpublication.failed')).toMatchObject([
      { address: refused, outcome: 'refused', directoryResponse: '422 Unprocessable Entity: test refusal' },
    ]);
    expect(await f.counter('mssgw_lifecycle_unpublications_total', { outcome: 'refused' })).toBe(1);
    // The refused mailbox is not flagged: a use does not ask for a republication.
    expect(await f.lifecycleActivity.onActivity(refused, 'imap', f.clock.now())).toBe('none');
    f.directory.refuse.clear();
    await runOn(f, 46);
    expect((await f.directory.calls()).map((c) => `${c.op} ${c.address}`)).toEqual([
      `unpublishInactive ${refused}`,
      `unpublishInactive ${refused}`,
      `unpublishInactive ${unreachable}`,
    ]);
  });
});
