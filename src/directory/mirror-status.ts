import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { describeSource } from './mirror-refresh.js';
import { MirrorStore, type MirrorState } from './mirror-store.js';
import { EXTRACTION_MIRROR } from './national-directory.js';

/** A configured mirror: its name, source and refresh interval. */
export interface MirrorDefinition {
  /** `whitelist`, `extraction` (when a source is set) or `crl:<name>`. */
  readonly name: string;
  readonly source: string;
  readonly refreshSeconds: number;
}

/** What `mssgw directory status` shows of one mirror. */
export interface MirrorStatus extends MirrorState {
  readonly mirror: string;
  readonly configuredSource: string;
  readonly refreshSeconds: number;
  /** Seconds since the copy in service was last confirmed by its source. */
  readonly ageSeconds?: number;
}

type MirrorConfig = Pick<Config, 'directory' | 'whitelistFile'>;

/** The mirrors the configuration asks for, in a fixed order. */
export function configuredMirrors(config: MirrorConfig): MirrorDefinition[] {
  const { whitelist, extraction, crls } = config.directory;
  return [
    {
      name: 'whitelist',
      source: whitelist.source ?? config.whitelistFile,
      refreshSeconds: whitelist.refreshSeconds,
    },
    ...(extraction.source === undefined
      ? []
      : [{ name: EXTRACTION_MIRROR, source: extraction.source, refreshSeconds: extraction.refreshSeconds }]),
    ...crls.map((c) => ({ name: `crl:${c.name}`, source: c.source, refreshSeconds: c.refreshSeconds })),
  ];
}

/** Seconds since the copy was last confirmed by its source (accepted or found unchanged). */
export function mirrorAgeSeconds(state: MirrorState, now: number): number | undefined {
  const since = state.confirmedAt ?? state.acceptedAt;
  return since === undefined ? undefined : Math.max(0, (now - Date.parse(since)) / 1000);
}

export function mirrorStatus(definition: MirrorDefinition, state: MirrorState, now: number): MirrorStatus {
  const age = mirrorAgeSeconds(state, now);
  return {
    mirror: definition.name,
    configuredSource: describeSource(definition.source),
    refreshSeconds: definition.refreshSeconds,
    ...state,
    ...(age === undefined ? {} : { ageSeconds: age }),
  };
}

/** The status of every configured mirror, read from Redis (no gateway process needed). */
export async function readMirrorStatuses(
  redis: Redis,
  config: MirrorConfig & { redis: Pick<Config['redis'], 'prefix'> },
  now: Date,
): Promise<MirrorStatus[]> {
  const store = new MirrorStore(redis, config.redis.prefix);
  return Promise.all(
    configuredMirrors(config).map(async (m) => mirrorStatus(m, await store.state(m.name), now.getTime())),
  );
}
