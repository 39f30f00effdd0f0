import { randomBytes } from 'node:crypto';
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type { Clock } from '../shared/index.js';
import { GatewayError, isGatewayError } from '../errors/index.js';
import type { TrustMaterial } from '../pki/index.js';
import { canonicalSubject, crlIssuer, crlPem, parseCrl } from './crl-check.js';
import { loadExtraction } from './extraction-loader.js';
import { refusal } from './mirror-outcome.js';
import type { MirrorState } from './mirror-store.js';
import { EXTRACTION_MIRROR } from './national-directory.js';
import { Whitelist, type WhitelistHolder } from './whitelist.js';
import { parseWhitelistXml, type ParsedWhitelist } from './whitelist-parser.js';

/**
 * What differs between the mirrors: how a new copy is validated and stored (prepare, in the one
 * process that refreshes), and how a stored copy is put in service (apply, in every process).
 */
export interface PrepareContext {
  readonly redis: Redis;
  /** The new copy, whole, on disk. */
  readonly file: string;
  /** Where to store it (the version being prepared). */
  readonly dataKey: string;
  /** The copy in service and where its data is, when there is one. */
  readonly previous: MirrorState;
  readonly previousDataKey?: string;
  readonly now: Date;
  /** Accept a copy that shrank more than allowed (an operator's decision, `refresh --accept-shrink`). */
  readonly acceptShrink: boolean;
}

export interface PreparedCopy {
  readonly entries: number;
  readonly added?: number;
  readonly removed?: number;
  readonly generatedAt?: string;
  readonly nextUpdate?: string;
  /** Accepted but worth an alert (reason `stale`). */
  readonly stale?: boolean;
  /** CRL mirrors: the canonical DN of the authority that issued the copy (kept in the state). */
  readonly issuer?: string;
  /** Whitelist: the malformed entries left out, each as `Domaine #n (domain): problem`. */
  readonly rejected?: readonly string[];
  /** Extra facts for the journal. */
  readonly details?: Record<string, unknown>;
}

export interface MirrorKind {
  /** `whitelist`, `extraction` or `crl:<name>`. */
  readonly name: string;
  readonly source: string;
  readonly refreshSeconds: number;
  prepare(ctx: PrepareContext): Promise<PreparedCopy>;
  /** Puts the stored copy in service in this process; nothing to do for lookups served from Redis. */
  apply(redis: Redis, dataKey: string, state: MirrorState): Promise<void>;
}

/** Refuses a copy with more than `maxShrinkShare` fewer entries than the one in service. */
export function checkShrink(
  previous: number | undefined,
  next: number,
  maxShrinkShare: number,
  acceptShrink: boolean,
): void {
  if (!previous || acceptShrink || next >= previous * (1 - maxShrinkShare)) return;
  const share = (previous - next) / previous;
  throw refusal(
    'shrink',
    `the new copy has ${next} entries against ${previous} in service (−${(share * 100).toFixed(1)} %, over ${(maxShrinkShare * 100).toFixed(1)} %)`,
    { previousEntries: previous, entries: next },
  );
}

function pairsOf(parsed: ParsedWhitelist): Set<string> {
  return new Set(parsed.entries.map((e) => `${e.domain}\n${e.canonicalDn}`));
}

function parseWhitelist(xml: Buffer, maxInvalidShare: number): ParsedWhitelist {
  try {
    return parseWhitelistXml(xml, maxInvalidShare);
  } catch (err) {
    if (isGatewayError(err) && err.code === 'WHITELIST_INVALID') throw refusal('malformed', err.message);
    // The XML parser's own errors (nesting, entity limits) mean the same: not a whitelist.
    if (!isGatewayError(err)) throw refusal('malformed', `whitelist unreadable: ${(err as Error).message}`);
    throw err;
  }
}

export function whitelistKind(options: {
  source: string;
  refreshSeconds: number;
  maxShrinkShare: number;
  maxInvalidShare: number;
  holder: WhitelistHolder;
  clock: Clock;
}): MirrorKind {
  return {
    name: 'whitelist',
    source: options.source,
    refreshSeconds: options.refreshSeconds,
    async prepare(ctx) {
      const xml = await readFile(ctx.file);
      const parsed = parseWhitelist(xml, options.maxInvalidShare);
      checkShrink(ctx.previous.entries, parsed.entries.length, options.maxShrinkShare, ctx.acceptShrink);
      let diff: { added: number; removed: number } | undefined;
      const before = ctx.previousDataKey ? await ctx.redis.getBuffer(ctx.previousDataKey) : null;
      if (before) {
        // A copy in service was accepted once: its bad entries are not counted against it again.
        const old = pairsOf(parseWhitelistXml(before, 1));
        const now = pairsOf(parsed);
        diff = {
          added: [...now].filter((p) => !old.has(p)).length,
          removed: [...old].filter((p) => !now.has(p)).length,
        };
      }
      await ctx.redis.set(ctx.dataKey, xml);
      const rejected = parsed.rejected.map((r) => r.problem);
      return {
        entries: parsed.entries.length,
        generatedAt: parsed.generatedAt,
        ...diff,
        rejected,
        ...(rejected.length > 0 ? { details: { rejected: rejected.length, rejectedEntries: rejected } } : {}),
      };
    },
    async apply(redis, dataKey, state) {
      const xml = await redis.getBuffer(dataKey);
      if (!xml)
        throw new GatewayError(
          'MIRROR_COPY_REPLACED',
          `whitelist copy ${dataKey} is gone (a newer one replaced it)`,
        );
      const label = `${options.source} (mirror version ${state.version ?? '?'})`;
      options.holder.swap(new Whitelist(parseWhitelistXml(xml, 1), label, options.clock.now()));
    },
  };
}

export function extractionKind(options: {
  source: string;
  refreshSeconds: number;
  maxShrinkShare: number;
  maxInvalidShare: number;
}): MirrorKind {
  return {
    name: EXTRACTION_MIRROR,
    source: options.source,
    refreshSeconds: options.refreshSeconds,
    async prepare(ctx) {
      const result = await loadExtraction({
        redis: ctx.redis,
        file: ctx.file,
        target: ctx.dataKey,
        maxInvalidShare: options.maxInvalidShare,
        ...(ctx.previousDataKey && ctx.previous.entries !== undefined
          ? { previous: { key: ctx.previousDataKey, entries: ctx.previous.entries } }
          : {}),
      });
      checkShrink(ctx.previous.entries, result.entries, options.maxShrinkShare, ctx.acceptShrink);
      return {
        entries: result.entries,
        ...(ctx.previousDataKey ? { added: result.added, removed: result.removed } : {}),
        details: {
          lines: result.lines,
          duplicates: result.duplicates,
          conflicts: result.conflicts,
          invalid: result.invalid,
          zipped: result.zipped,
        },
      };
    },
    // Lookups read the version in service from Redis: nothing to swap in memory.
    apply: () => Promise.resolve(),
  };
}

/** Where a mirrored CRL is written for the TLS trust material. */
export function crlFile(dataDir: string, name: string): string {
  return path.join(dataDir, 'mirrors', 'crl', `${name}.crl`);
}

export function crlKind(options: {
  name: string;
  source: string;
  refreshSeconds: number;
  /** DN of the authority this CRL is for; without it, the issuer of the first copy accepted. */
  issuer?: string | undefined;
  trust: () => TrustMaterial;
  file: string;
  onChange: (file: string) => void;
}): MirrorKind {
  return {
    name: `crl:${options.name}`,
    source: options.source,
    refreshSeconds: options.refreshSeconds,
    async prepare(ctx) {
      const crl = parseCrl(await readFile(ctx.file));
      const issuer = crlIssuer(crl, options.trust().authorities, options.issuer ?? ctx.previous.issuer);
      if (crl.nextUpdate !== undefined && crl.nextUpdate.getTime() < ctx.now.getTime())
        throw refusal(
          'expired',
          `the CRL's nextUpdate (${crl.nextUpdate.toISOString()}) has passed: OpenSSL would refuse every certificate of ${canonicalSubject(issuer)}`,
        );
      const inService = ctx.previous.generatedAt ? Date.parse(ctx.previous.generatedAt) : undefined;
      // A replayed older list would un-revoke certificates revoked since (RFC 5280 §5.1.2.4).
      if (inService !== undefined && crl.thisUpdate.getTime() < inService)
        throw refusal(
          'older',
          `the CRL was issued ${crl.thisUpdate.toISOString()}, before the one in service (${ctx.previous.generatedAt})`,
        );
      await ctx.redis.set(ctx.dataKey, crl.der);
      return {
        entries: crl.revokedCount,
        generatedAt: crl.thisUpdate.toISOString(),
        ...(crl.nextUpdate ? { nextUpdate: crl.nextUpdate.toISOString() } : {}),
        issuer: canonicalSubject(issuer),
        details: { issuer: issuer.subject.replace(/\n/g, ', ') },
      };
    },
    async apply(redis, dataKey) {
      const der = await redis.getBuffer(dataKey);
      if (!der)
        throw new GatewayError(
          'MIRROR_COPY_REPLACED',
          `CRL copy ${dataKey} is gone (a newer one replaced it)`,
        );
      // Temporary file then rename: the TLS reload never reads a half-written list.
      const tmp = `${options.file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(tmp, crlPem(der), { mode: 0o644 });
      await rename(tmp, options.file);
      options.onChange(options.file);
    },
  };
}
