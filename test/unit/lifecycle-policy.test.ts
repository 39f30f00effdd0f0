import { describe, expect, it } from 'vitest';
import {
  DAY_MS,
  decideInactivity,
  type InactivityDecision,
  type PolicySubject,
} from '../../src/lifecycle/index.js';
import { iso } from '../../src/lifecycle/inactivity-policy.js';

const THRESHOLDS = { inactivityDays: 45, warningLeadDays: 15 } as const;
const T0 = Date.parse('2026-01-05T08:30:00.000Z');
const HOUR = 3_600_000;
const days = (n: number) => n * DAY_MS;

/** A published mailbox created at T0, never used, never warned. */
function subject(extra: Partial<PolicySubject> = {}): PolicySubject {
  return {
    address: 'dr.martin@op.mssante.test',
    status: 'active',
    createdAt: T0,
    redListed: false,
    publication: 'published',
    publishedSince: T0,
    ...extra,
  };
}

function brief(d: InactivityDecision): { action: string; reason: string } {
  return { action: d.action, reason: d.reason };
}

describe('inactivity policy: who is a candidate', () => {
  const longIdle = { lastActivityAt: T0, warnedAt: T0 + days(30) };
  it.each([
    ['deleted', { status: 'deleted' as const }, 'deleted'],
    ['suspended', { status: 'suspended' as const }, 'suspended'],
    ['red-listed', { redListed: true }, 'red-listed'],
    ['unpublished for inactivity already', { publication: 'unpublished-inactive' as const }, 'not-published'],
    ['unpublished for another reason', { publication: 'unpublished' as const }, 'not-published'],
    ['publication pending', { publication: 'pending' as const }, 'not-published'],
    ['publication failed', { publication: 'failed' as const }, 'not-published'],
    ['no publication state', { publication: undefined }, 'publication-unknown'],
  ])('%s: never a candidate, however long idle', (_name, extra, reason) => {
    const d = decideInactivity(subject({ ...longIdle, ...extra }), T0 + days(200), THRESHOLDS);
    expect(brief(d)).toEqual({ action: 'none', reason });
  });

  it('checks suspension and deletion before the publication state (a stale "published" is ignored)', () => {
    const d = decideInactivity(
      subject({ status: 'suspended', publication: 'published' }),
      T0 + days(90),
      THRESHOLDS,
    );
    expect(d.reason).toBe('suspended');
  });
});

describe('inactivity policy: thresholds with an injected clock', () => {
  const used = T0 + days(1);
  it.each([
    // [idle, warned at (days after last use, or null), expected action, reason]
    [days(29), null, 'none', 'recently-used'],
    [days(30) - 1, null, 'none', 'recently-used'],
    [days(30), null, 'warn', 'inactivity-warning'],
    [days(31), days(30), 'none', 'warned'],
    [days(44), days(30), 'none', 'warned'],
    [days(45) - 1, days(30), 'none', 'warned'],
    [days(45), days(30), 'unpublish-inactive', 'inactive'],
    [days(45) + 2 * HOUR, days(30) + 3 * HOUR, 'unpublish-inactive', 'inactive'],
    [days(60), null, 'warn', 'overdue-warning'],
    [days(60), days(55), 'none', 'warned'],
    [days(70), days(55), 'unpublish-inactive', 'inactive'],
  ] as const)('idle %d ms, warned %s → %s (%s)', (idle, warnedAfter, action, reason) => {
    const d = decideInactivity(
      subject({ lastActivityAt: used, ...(warnedAfter === null ? {} : { warnedAt: used + warnedAfter }) }),
      used + idle,
      THRESHOLDS,
    );
    expect(brief(d)).toEqual({ action, reason });
  });

  it('a warning of an earlier inactivity period does not count: use starts a new period', () => {
    const d = decideInactivity(
      subject({ lastActivityAt: T0 + days(40), warnedAt: T0 + days(31) }),
      T0 + days(70),
      THRESHOLDS,
    );
    expect(brief(d)).toEqual({ action: 'warn', reason: 'inactivity-warning' });
  });

  it('a mailbox never used counts from its creation', () => {
    const d = decideInactivity(subject({ publishedSince: T0 + HOUR }), T0 + days(30) + HOUR, THRESHOLDS);
    expect(d.action).toBe('warn');
    if (d.action !== 'warn') return;
    expect(d.evidence).toMatchObject({
      lastActivityAt: null,
      basis: 'publication',
      inactiveSince: new Date(T0 + HOUR).toISOString(),
      idleDays: 30,
    });
    const fromCreation = decideInactivity(subject({ publishedSince: T0 }), T0 + days(30), THRESHOLDS);
    expect(fromCreation.action === 'warn' && fromCreation.evidence.basis).toBe('creation');
  });

  it('a mailbox republished after a long suspension gets a fresh period', () => {
    const d = decideInactivity(
      subject({ lastActivityAt: T0, publishedSince: T0 + days(100) }),
      T0 + days(110),
      THRESHOLDS,
    );
    expect(brief(d)).toEqual({ action: 'none', reason: 'recently-used' });
  });

  it('gives the full notice when the warning comes late, and says so in the evidence', () => {
    const now = T0 + days(60);
    const late = decideInactivity(subject({ lastActivityAt: T0 }), now, THRESHOLDS);
    expect(late.action === 'warn' && late.evidence.unpublishAt).toBe(new Date(now + days(15)).toISOString());
    // Fourteen daily runs later the notice is not over; the fifteenth run unpublishes.
    const warned = subject({ lastActivityAt: T0, warnedAt: now });
    expect(decideInactivity(warned, now + days(14), THRESHOLDS).action).toBe('none');
    expect(decideInactivity(warned, now + days(15) - 60_000, THRESHOLDS).action).toBe('unpublish-inactive');
  });

  it('carries the evidence the journal needs: last use, threshold, decision time', () => {
    const now = used + days(45) + HOUR;
    const d = decideInactivity(subject({ lastActivityAt: used, warnedAt: used + days(30) }), now, THRESHOLDS);
    expect(d).toEqual({
      action: 'unpublish-inactive',
      address: 'dr.martin@op.mssante.test',
      reason: 'inactive',
      evidence: {
        lastActivityAt: new Date(used).toISOString(),
        inactiveSince: new Date(used).toISOString(),
        basis: 'activity',
        idleDays: 45,
        inactivityDays: 45,
        warningLeadDays: 15,
        warnedAt: new Date(used + days(30)).toISOString(),
        unpublishAt: new Date(used + days(45)).toISOString(),
        decidedAt: new Date(now).toISOString(),
      },
    });
  });

  it('honours other thresholds', () => {
    const t = { inactivityDays: 10, warningLeadDays: 3 };
    expect(decideInactivity(subject(), T0 + days(7), t).action).toBe('warn');
    expect(decideInactivity(subject({ warnedAt: T0 + days(7) }), T0 + days(10), t).action).toBe(
      'unpublish-inactive',
    );
  });
});

/**
 * The daily job as a state machine: each "run" applies the decisions to the state the way the
 * runner and the publication module do, so the test sees what happens over days, not one decision.
 */
describe('inactivity policy over daily runs', () => {
  interface State {
    publication: PolicySubject['publication'];
    lastActivityAt?: number;
    warnedAt?: number;
    publishedSince: number;
  }

  function simulate(
    runDays: number,
    uses: readonly number[],
  ): { warnings: number[]; unpublications: number[]; state: State } {
    const state: State = { publication: 'published', publishedSince: T0 };
    const warnings: number[] = [];
    const unpublications: number[] = [];
    for (let day = 1; day <= runDays; day += 1) {
      // Uses happen during the day, before the run at 03:15 the next morning.
      for (const u of uses.filter((x) => x === day - 1)) {
        state.lastActivityAt = T0 + days(u) + 10 * HOUR;
        if (state.publication === 'unpublished-inactive') {
          state.publication = 'published';
          state.publishedSince = state.lastActivityAt;
        }
      }
      const now = T0 + days(day) - 5 * HOUR;
      const d = decideInactivity(subject(state), now, THRESHOLDS);
      if (d.action === 'warn') {
        warnings.push(day);
        state.warnedAt = now;
      } else if (d.action === 'unpublish-inactive') {
        unpublications.push(day);
        state.publication = 'unpublished-inactive';
      }
    }
    return { warnings, unpublications, state };
  }

  it('warns once 30 days in, keeps the mailbox published through day 44, unpublishes once 45 days in', () => {
    const { warnings, unpublications, state } = simulate(90, []);
    // Runs at 03:15 UTC: the run of day 31 is the first at 30 full days after the creation at 08:30.
    expect(warnings).toEqual([31]);
    expect(unpublications).toEqual([46]);
    expect(state.publication).toBe('unpublished-inactive');
  });

  it('a use (the owner, or a delegate opening the same mailbox) starts a new period and a new warning', () => {
    const { warnings, unpublications } = simulate(120, [35]);
    expect(warnings).toEqual([31, 66]);
    expect(unpublications).toEqual([81]);
  });

  it('after an unpublication, the next use republishes it and the cycle starts again from that use', () => {
    const { warnings, unpublications, state } = simulate(110, [50]);
    expect(warnings).toEqual([31, 81]);
    expect(unpublications).toEqual([46, 96]);
    expect(state.publication).toBe('unpublished-inactive');
  });
});

describe('evidence instants', () => {
  it('are written exactly as Date.prototype.toISOString writes them, fast path and fallback alike', () => {
    const instants = [
      0,
      1,
      999,
      DAY_MS - 1,
      Date.parse('2000-02-29T23:59:59.999Z'),
      Date.parse('2100-03-01T00:00:00.000Z'),
      Date.parse('9999-12-31T23:59:59.999Z'),
      Date.parse('9999-12-31T23:59:59.999Z') + 1, // year 10000: through Date
      -1, // before 1970: through Date
      T0 + 0.5, // not a whole millisecond: through Date
    ];
    // A deterministic sweep over four centuries, steps of a prime number of milliseconds.
    for (let ms = Date.parse('1970-01-01T00:00:00.000Z'); ms < Date.parse('2400-01-01'); ms += 1_000_003_307)
      instants.push(ms);
    for (const ms of instants) expect(iso(ms)).toBe(new Date(ms).toISOString());
  });

  it('are those of each decision when decisions at different times and of different kinds alternate', () => {
    // The run's time and overdue warnings' dates are kept from one decision to the next: a
    // decision at another time (a step decided again later) must not get the previous ones.
    const cases = [
      { s: subject(), now: T0 + days(50) }, // overdue warning, never used
      { s: subject({ lastActivityAt: T0 + days(2) }), now: T0 + days(33) }, // warning in time
      { s: subject({ lastActivityAt: T0, warnedAt: T0 + days(31) }), now: T0 + days(47) }, // unpublished
      { s: subject(), now: T0 + days(50) + HOUR },
      { s: subject(), now: T0 + days(50) },
    ];
    for (const round of [1, 2]) {
      for (const { s, now } of cases) {
        const d = decideInactivity(s, now, THRESHOLDS);
        expect(d.action, `round ${round}`).not.toBe('none');
        if (d.action === 'none') continue;
        const e = d.evidence;
        const at = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
        expect(e.decidedAt).toBe(at(now));
        expect(e.lastActivityAt).toBe(at(s.lastActivityAt));
        expect(e.inactiveSince).toBe(at(s.lastActivityAt ?? s.createdAt));
        expect(e.warnedAt).toBe(d.action === 'unpublish-inactive' ? at(s.warnedAt) : null);
        const notice = days(THRESHOLDS.warningLeadDays);
        const due = (s.lastActivityAt ?? s.createdAt) + days(THRESHOLDS.inactivityDays);
        // An unpublication keeps the notice its warning gave, with the rule's half a day of slack.
        const kept = (s.warnedAt ?? 0) + notice - DAY_MS / 2;
        expect(e.unpublishAt).toBe(at(Math.max(due, d.action === 'warn' ? now + notice : kept)));
      }
    }
  });
});
