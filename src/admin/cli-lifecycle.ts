import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import type { Redis } from 'ioredis';
import { systemClock } from '../clock.js';
import { readSecretFile, type Config } from '../config/index.js';
import { GatewayError, isGatewayError } from '../errors/index.js';
import {
  AssumedPublication,
  LifecyclePlanner,
  frenchDate,
  nextDailyRun,
  type PlannedBal,
} from '../lifecycle/index.js';
import { MemoryAuditJournal } from '../observability/index.js';
import { createRedisClient } from '../redis/index.js';
import { ActivityStore, BalRegistry } from '../registry/index.js';
import type { CliIo } from './cli-context.js';

/**
 * `mssgw lifecycle preview`: what the next daily run would do and why, without doing it. Reads the
 * gateway's Redis directly (registry, activity, warnings) with the same planner as the run.
 *
 * The publication state comes from AssumedPublication until the publication store is wired here:
 * active mailboxes count as published since their creation unless the lifecycle unpublished them,
 * and the red list is not known. The output says so.
 */
export function registerLifecycleCommands(program: Command, io: CliIo): void {
  const lifecycle = program
    .command('lifecycle')
    .description('mailbox lifecycle: inactivity warnings and unpublication (daily job)');

  lifecycle
    .command('preview')
    .description('list what the next daily run would do (warn, unpublish, purge) and why, without doing it')
    .option('--at <instant>', 'decide as of this ISO 8601 instant instead of the next run', parseInstant)
    .option('--all', 'also list the mailboxes left alone, with the reason')
    .option('--json', 'print JSON: { asOf, thresholds, publicationSource, items, counts }')
    .action(async (opts: { at?: Date; all?: boolean; json?: boolean }) => {
      const config = io.loadConfig(io.env);
      const { inactivityDays, warningLeadDays, runAt, timeZone, deletedMailRetentionDays } = config.lifecycle;
      const asOf = opts.at?.getTime() ?? nextDailyRun(systemClock.now().getTime(), runAt, timeZone);
      await withGatewayRedis(config, async (redis) => {
        const planner = new LifecyclePlanner({
          redis,
          prefix: config.redis.prefix,
          thresholds: { inactivityDays, warningLeadDays },
          deletedMailRetentionDays,
          registry: readOnlyRegistry(redis, config),
          activity: ActivityStore.withPrefix(redis, config.redis.prefix),
          publication: new AssumedPublication({ redis, prefix: config.redis.prefix }),
        });
        const items: PreviewItem[] = [];
        const counts: Record<string, number> = {};
        for await (const page of planner.pages(asOf)) {
          for (const p of page) {
            const key = `${p.decision.action}:${p.decision.reason}`;
            counts[key] = (counts[key] ?? 0) + 1;
            if (p.purge) counts['purge-mail:retention-over'] = (counts['purge-mail:retention-over'] ?? 0) + 1;
            items.push(...previewItems(p, opts.all === true));
          }
        }
        const header = {
          asOf: new Date(asOf).toISOString(),
          thresholds: { inactivityDays, warningLeadDays, deletedMailRetentionDays },
          publicationSource: 'assumed',
        };
        if (opts.json) {
          io.stdout(`${JSON.stringify({ ...header, items, counts }, null, 2)}\n`);
          return;
        }
        io.stdout(formatPreview(header, items, counts, timeZone));
      });
    });
}

/** One line of the preview. */
interface PreviewItem {
  readonly action: string;
  readonly address: string;
  readonly reason: string;
  readonly idleDays?: number;
  readonly lastActivityAt?: string | null;
  readonly unpublishAt?: string;
  readonly warnedAt?: string | null;
  readonly purgeAfter?: string;
}

function previewItems(p: PlannedBal, all: boolean): PreviewItem[] {
  const out: PreviewItem[] = [];
  const d = p.decision;
  if (d.action === 'none') {
    if (all) {
      out.push({
        action: 'none',
        address: d.address,
        reason: d.reason,
        ...(d.idleDays === undefined ? {} : { idleDays: d.idleDays }),
      });
    }
  } else {
    out.push({
      action: d.action,
      address: d.address,
      reason: d.reason,
      idleDays: d.evidence.idleDays,
      lastActivityAt: d.evidence.lastActivityAt,
      unpublishAt: d.evidence.unpublishAt,
      warnedAt: d.evidence.warnedAt,
    });
  }
  if (p.purge) {
    out.push({
      action: 'purge-mail',
      address: p.purge.address,
      reason: 'retention-over',
      purgeAfter: p.purge.purgeAfter,
    });
  }
  return out;
}

function formatPreview(
  header: { asOf: string; thresholds: { inactivityDays: number; warningLeadDays: number } },
  items: readonly PreviewItem[],
  counts: Readonly<Record<string, number>>,
  timeZone: string,
): string {
  const lines = [
    `lifecycle preview as of ${header.asOf} (inactivity ${header.thresholds.inactivityDays} days, ` +
      `warning ${header.thresholds.warningLeadDays} days before)`,
    'publication state: assumed (publication store not wired to this command): active mailboxes count as ' +
      'published since their creation unless unpublished for inactivity; the red list is not known',
  ];
  if (items.length === 0) lines.push('nothing to do');
  for (const item of items) lines.push(formatItem(item, timeZone));
  const summary = Object.entries(counts)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, n]) => `${key} ${n}`)
    .join(', ');
  lines.push(`decisions: ${summary === '' ? 'no mailbox' : summary}`);
  return `${lines.join('\n')}\n`;
}

function formatItem(item: PreviewItem, timeZone: string): string {
  const facts: string[] = [];
  if (item.idleDays !== undefined) facts.push(`idle ${item.idleDays} d`);
  if (item.lastActivityAt !== undefined) {
    facts.push(`last use ${item.lastActivityAt === null ? 'never' : item.lastActivityAt}`);
  }
  if (item.warnedAt) facts.push(`warned ${item.warnedAt}`);
  if (item.unpublishAt) facts.push(`unpublication ${frenchDate(Date.parse(item.unpublishAt), timeZone)}`);
  if (item.purgeAfter) facts.push(`retention over since ${item.purgeAfter}`);
  return `${item.action.padEnd(18)} ${item.address}  ${item.reason}${facts.length ? `  (${facts.join(', ')})` : ''}`;
}

function parseInstant(value: string): Date {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('give an ISO 8601 instant, e.g. 2026-03-16T02:15:00Z');
  return new Date(ms);
}

/** The registry for reading only: the CLI never creates a mailbox, so no store is needed. */
export function readOnlyRegistry(redis: Redis, config: Config): BalRegistry {
  return new BalRegistry({
    redis,
    prefix: config.redis.prefix,
    domains: config.domains,
    clock: systemClock,
    journal: new MemoryAuditJournal(),
    provisioner: {
      provision: () => Promise.reject(new Error('the command line reads the registry only')),
    },
  });
}

/**
 * Runs `fn` with a client of the gateway's Redis: `redis.url`, else the embedded one's socket under
 * the data directory (src/redis/redis-config.ts `redisPaths`: `<dataDir>/run/redis.sock`).
 */
export async function withGatewayRedis<T>(config: Config, fn: (redis: Redis) => Promise<T>): Promise<T> {
  const url = config.redis.url ?? `unix://${path.join(path.resolve(config.dataDir), 'run', 'redis.sock')}`;
  const password = config.redis.passwordFile ? readSecretFile(config.redis.passwordFile) : undefined;
  const redis = createRedisClient(url, {
    name: 'mssgw-cli',
    maxRetriesPerRequest: 1,
    ...(password === undefined ? {} : { password }),
  });
  try {
    return await fn(redis);
  } catch (err) {
    if (isGatewayError(err) && err.code !== 'REGISTRY_UNAVAILABLE') throw err;
    const why = err instanceof Error ? err.message : String(err);
    throw new GatewayError(
      'REGISTRY_UNAVAILABLE',
      `cannot read the gateway's Redis: ${why} (is the gateway running? is redis.url right?)`,
      {},
      { cause: err },
    );
  } finally {
    redis.disconnect();
  }
}
