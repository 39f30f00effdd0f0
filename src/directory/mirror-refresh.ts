import path from 'node:path';
import type { Clock } from '../shared/index.js';
import { isGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import type { MirrorKind } from './mirror-kinds.js';
import {
  type FailureReason,
  type RefreshOutcome,
  type RefreshReason,
  type RefreshResult,
  reasonOf,
} from './mirror-outcome.js';
import { type FetchOptions, type FetchedCopy, discardCopy, fetchCopy, isUrlSource } from './mirror-source.js';
import type { MirrorStore } from './mirror-store.js';

/**
 * One refresh of one mirror, in the process BullMQ gave the job to: fetch, compare, validate and
 * store under a new version, switch, then say what happened (state hash, metric, journal, log).
 * Whatever fails, the copy in service stays.
 */
export interface RefreshDeps {
  readonly store: MirrorStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly journal: AuditJournal;
  readonly metrics: Pick<Metrics, 'mirrorRefreshes'>;
  /** Built at each refresh: the trust material may have been reloaded since the last one. */
  readonly fetchOptions: () => FetchOptions;
  /** How long a refresh may hold the mirror's lock. */
  readonly lockTtlMs: number;
}

/** The source as journals and status show it: no credentials, no query string. */
export function describeSource(source: string): string {
  if (!isUrlSource(source)) return path.resolve(source);
  const url = new URL(source);
  return `${url.protocol}//${url.host}${url.pathname}`;
}

function failureReason(err: unknown): FailureReason | RefreshReason {
  const reason = reasonOf(err);
  if (reason) return reason;
  return isGatewayError(err) && err.code === 'DIRECTORY_UNAVAILABLE' ? 'store' : 'internal';
}

export async function runRefresh(
  kind: MirrorKind,
  deps: RefreshDeps,
  options: { acceptShrink?: boolean } = {},
): Promise<RefreshResult> {
  const { store, clock } = deps;
  const mirror = kind.name;
  const source = describeSource(kind.source);
  const at = clock.now();
  const done = (result: RefreshResult): RefreshResult => {
    deps.metrics.mirrorRefreshes.inc({ mirror, outcome: result.outcome, reason: result.reason });
    return result;
  };

  let token: string | undefined;
  try {
    token = await store.lock(mirror, deps.lockTtlMs);
  } catch (err) {
    return done(fail(kind, deps, 'failed', 'store', err, source));
  }
  if (!token) return done({ mirror, outcome: 'skipped', reason: 'busy' });

  let copy: FetchedCopy | undefined;
  let staged: string | undefined;
  try {
    const previous = await store.state(mirror);
    await store.dropOrphans(mirror, previous.version);
    copy = await fetchCopy(kind.source, deps.fetchOptions());
    if (previous.version !== undefined && previous.sha256 === copy.sha256) {
      await store.recordAttempt(mirror, {
        at: at.toISOString(),
        outcome: 'unchanged',
        reason: 'same_content',
        confirmedAt: at.toISOString(),
      });
      deps.journal.record({ event: 'directory.mirror.unchanged', mirror, source, version: previous.version });
      return done({
        mirror,
        outcome: 'unchanged',
        reason: 'same_content',
        version: previous.version,
        ...(previous.entries === undefined ? {} : { entries: previous.entries }),
      });
    }
    const version = await store.nextVersion(mirror);
    staged = store.keys.data(mirror, version);
    const prepared = await kind.prepare({
      redis: store.redis,
      file: copy.file,
      dataKey: staged,
      previous,
      ...(previous.version === undefined
        ? {}
        : { previousDataKey: store.keys.data(mirror, previous.version) }),
      now: at,
      acceptShrink: options.acceptShrink === true,
    });
    const reason = prepared.stale ? 'stale' : 'ok';
    const switched = await store.switchTo(mirror, previous.version, version, {
      source,
      sha256: copy.sha256,
      sizeBytes: copy.sizeBytes,
      entries: prepared.entries,
      added: prepared.added,
      removed: prepared.removed,
      generatedAt: prepared.generatedAt,
      nextUpdate: prepared.nextUpdate,
      issuer: prepared.issuer,
      rejected: prepared.rejected?.length,
      rejectedEntries: prepared.rejected?.length ? prepared.rejected.join('\n') : undefined,
      acceptedAt: at.toISOString(),
    });
    staged = undefined; // switched in, or dropped by switchTo
    if (!switched) return done({ mirror, outcome: 'skipped', reason: 'superseded' });
    await store.recordAttempt(mirror, {
      at: at.toISOString(),
      outcome: 'accepted',
      reason,
      confirmedAt: at.toISOString(),
    });
    const facts = {
      mirror,
      source,
      version,
      previousVersion: previous.version ?? null,
      entries: prepared.entries,
      added: prepared.added,
      removed: prepared.removed,
      sizeBytes: copy.sizeBytes,
      sha256: copy.sha256,
      reason,
      ...(prepared.nextUpdate ? { nextUpdate: prepared.nextUpdate } : {}),
      ...prepared.details,
    };
    deps.journal.record({ event: 'directory.mirror.accepted', ...facts });
    if (prepared.stale)
      deps.logger.warn(
        { event: 'directory.mirror.stale', ...facts },
        'revocation list accepted, but its nextUpdate has passed',
      );
    else deps.logger.info({ event: 'directory.mirror.accepted', ...facts }, 'mirror copy accepted');
    return done({
      mirror,
      outcome: 'accepted',
      reason,
      version,
      entries: prepared.entries,
      ...(prepared.added === undefined ? {} : { added: prepared.added }),
      ...(prepared.removed === undefined ? {} : { removed: prepared.removed }),
    });
  } catch (err) {
    if (staged) await store.redis.unlink(...store.keys.versionKeys(staged)).catch(() => undefined);
    const refused = isGatewayError(err) && err.code === 'MIRROR_COPY_REFUSED';
    const result = fail(kind, deps, refused ? 'refused' : 'failed', failureReason(err), err, source);
    await store
      .recordAttempt(mirror, {
        at: at.toISOString(),
        outcome: result.outcome,
        reason: result.reason,
        error: result.error ?? '',
      })
      .catch(() => undefined);
    const inService = await store.state(mirror).catch(() => undefined);
    return done({ ...result, ...(inService?.version === undefined ? {} : { version: inService.version }) });
  } finally {
    await discardCopy(copy).catch(() => undefined);
    await store.unlock(mirror, token).catch(() => undefined);
  }
}

/** Journal and log of a refused or failed copy; the copy in service stays. */
function fail(
  kind: MirrorKind,
  deps: RefreshDeps,
  outcome: Extract<RefreshOutcome, 'refused' | 'failed'>,
  reason: RefreshReason,
  err: unknown,
  source: string,
): RefreshResult {
  const error = err instanceof Error ? err.message : String(err);
  const event = outcome === 'refused' ? 'directory.mirror.refused' : 'directory.mirror.failed';
  deps.journal.record({ event, mirror: kind.name, source, reason, error });
  const log = { event, mirror: kind.name, source, reason, err: error };
  if (reason === 'internal') deps.logger.error(log, 'mirror refresh failed');
  else deps.logger.warn(log, 'mirror copy not taken; the last good copy stays in service');
  return { mirror: kind.name, outcome, reason, error };
}
