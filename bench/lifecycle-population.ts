import { DAY_MS, type PolicySubject } from '../src/lifecycle/index.js';
import { PUBLICATION_STATES } from '../src/publication/index.js';
import type { SeedBal } from './registry-seed.js';

/**
 * The mailboxes of the lifecycle benchmarks: a population that looks like an operator's, most
 * mailboxes used in the last weeks, some idle for months, a few never used, suspended, deleted,
 * red-listed or not published. Deterministic: the same at every run.
 */

/** The instant every benchmark decides at. */
export const NOW = Date.parse('2026-06-15T01:15:00.000Z');
export const THRESHOLDS = { inactivityDays: 45, warningLeadDays: 15 } as const;

/** The i-th mailbox of a pseudo-random population (mulberry32 from `seed`); call with i = 0, 1, 2… */
export function generator(seed: number): (i: number) => PolicySubject {
  let a = seed;
  const next = () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return (i) => {
    const r = next();
    const createdAt = NOW - Math.floor(30 + next() * 1500) * DAY_MS;
    // 70 % used in the last 30 days, 20 % idle 30 to 400 days, 10 % never used.
    const lastActivityAt =
      r < 0.7
        ? NOW - Math.floor(next() * 30 * DAY_MS)
        : r < 0.9
          ? Math.max(createdAt, NOW - Math.floor((30 + next() * 370) * DAY_MS))
          : undefined;
    const s = next();
    const status = s < 0.02 ? 'deleted' : s < 0.05 ? 'suspended' : 'active';
    const p = next();
    const publication =
      p < 0.9 ? 'published' : PUBLICATION_STATES[Math.floor(next() * PUBLICATION_STATES.length)];
    const warned = lastActivityAt !== undefined && next() < 0.15;
    return {
      address: `bal${i}@op.mssante.test`,
      status,
      createdAt,
      redListed: next() < 0.01,
      publication,
      publishedSince: createdAt,
      ...(lastActivityAt === undefined ? {} : { lastActivityAt }),
      ...(warned ? { warnedAt: lastActivityAt + 30 * DAY_MS } : {}),
    };
  };
}

/**
 * The same population as registry records for `seedRegistry` (bench/registry-seed.ts): PER mailboxes
 * of distinct owners, used on IMAP at `lastActivityAt`, suspended or deleted a day after their last
 * event, warned when that lies in the past, and unpublished for inactivity when the population says
 * not published (the run's own publication stand-in, AssumedPublication, knows no other state).
 */
export function* seedPopulation(count: number, seed: number): Generator<SeedBal> {
  const subject = generator(seed);
  for (let i = 0; i < count; i += 1) {
    const s = subject(i);
    const lastEvent = Math.max(s.createdAt, s.lastActivityAt ?? 0);
    const changedAt = new Date(Math.min(NOW - 1, lastEvent + DAY_MS)).toISOString();
    yield {
      address: s.address,
      type: 'PER',
      owner: `8${String(i).padStart(11, '0')}`,
      createdAt: new Date(s.createdAt).toISOString(),
      ...(s.redListed ? { listeRouge: true } : {}),
      ...(s.lastActivityAt === undefined ? {} : { used: { channel: 'imap', at: s.lastActivityAt } }),
      ...(s.status === 'active' ? {} : { change: { to: s.status, at: changedAt } }),
      ...(s.warnedAt !== undefined && s.warnedAt <= NOW ? { warnedAt: s.warnedAt } : {}),
      ...(s.publication === 'published' ? {} : { unpublishedInactive: true }),
    };
  }
}
