import { InvalidArgumentError, type Command } from 'commander';
import type { Redis } from 'ioredis';
import type { Config } from '../config/index.js';
import { GatewayError } from '../errors/index.js';
import type * as LifecycleModule from '../lifecycle/index.js';
import type { PlannedBal, PublicationStateReader, PublicationView } from '../lifecycle/index.js';
import type * as ObservabilityModule from '../observability/index.js';
import type * as PublicationModule from '../publication/index.js';
import type { PublicationStateName } from '../publication/index.js';
import type * as RegistryModule from '../registry/index.js';
import type { Bal, BalRegistry } from '../registry/index.js';
import type * as SharedModule from '../shared/index.js';
import type { CliContext } from './cli-context.js';
import { withGatewayRedis } from './cli-redis.js';

/** The modules the lifecycle commands work with, imported when one runs: `mssgw --help` does without. */
interface LifecycleDeps {
  readonly lifecycle: typeof LifecycleModule;
  readonly observability: typeof ObservabilityModule;
  readonly publication: typeof PublicationModule;
  readonly registry: typeof RegistryModule;
  readonly shared: typeof SharedModule;
}

let loaded: LifecycleDeps | undefined;

export async function lifecycleDeps(): Promise<LifecycleDeps> {
  const [lifecycle, observability, publication, registry, shared] = await Promise.all([
    import('../lifecycle/index.js'),
    import('../observability/index.js'),
    import('../publication/index.js'),
    import('../registry/index.js'),
    import('../shared/index.js'),
  ]);
  return (loaded ??= { lifecycle, observability, publication, registry, shared });
}

function deps(): LifecycleDeps {
  if (loaded === undefined) throw new GatewayError('INTERNAL', 'lifecycleDeps() was not awaited');
  return loaded;
}

/**
 * `mssgw lifecycle preview`: what the next daily run would do and why, without doing it. Reads the
 * gateway's Redis directly (registry, activity, warnings) with the same planner as the run.
 *
 * The publication state is read from the publication module's records where they exist
 * (StoredPublication below); a mailbox without one counts as AssumedPublication says (published
 * since its creation while active, unless the lifecycle unpublished it). The output says how many
 * came from where. Purges of deleted mail are not previewed: the run plans them only when a mail
 * purger is wired (LifecycleRunnerOptions.mailPurger), which the gateway does not have yet.
 */
export function registerLifecycleCommands(program: Command, ctx: CliContext): void {
  const { io } = ctx;
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
      const { lifecycle: lib, registry, shared } = await lifecycleDeps();
      const config = io.loadConfig(io.env);
      const { inactivityDays, warningLeadDays, runAt, timeZone } = config.lifecycle;
      const asOf =
        opts.at?.getTime() ?? lib.nextDailyRun(shared.systemClock.now().getTime(), runAt, timeZone);
      await withGatewayRedis(config, 'REGISTRY_UNAVAILABLE', async (redis) => {
        const publication = new StoredPublication(redis, config.redis.prefix);
        const planner = new lib.LifecyclePlanner({
          redis,
          prefix: config.redis.prefix,
          thresholds: { inactivityDays, warningLeadDays },
          registry: readOnlyRegistry(redis, config),
          activity: registry.ActivityStore.withPrefix(redis, config.redis.prefix),
          publication,
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
          thresholds: { inactivityDays, warningLeadDays },
          publicationSource: { stored: publication.stored, assumed: publication.assumed },
        };
        if (opts.json) {
          io.stdout(`${JSON.stringify({ ...header, items, counts }, null, 2)}\n`);
          return;
        }
        io.stdout(formatPreview(header, items, counts, timeZone));
      });
    });

  // Issue #14 item 9: the clock override of the development walk-through. Through the admin API,
  // since only the running gateway can deliver the warning and call the directory.
  lifecycle
    .command('run')
    .description('development only: run the daily job now, as if it were --at (warnings, unpublication)')
    .requiredOption('--at <instant>', 'plan the run as of this ISO 8601 instant', parseInstant)
    .option('--json', 'print the run summary as JSON')
    .action(async (opts: { at: Date; json?: boolean }, cmd: Command) => {
      const summary = await ctx.client(cmd).lifecycleRunAt(opts.at);
      if (opts.json) {
        io.stdout(`${JSON.stringify(summary, null, 2)}\n`);
        return;
      }
      const outcomes = Object.entries(summary.outcomes).map(([k, n]) => `${k} ${n}`);
      io.stdout(
        `lifecycle run ${summary.runId} as of ${summary.asOf}: ${summary.status}, ` +
          `${summary.planned} step(s)${outcomes.length > 0 ? ` (${outcomes.join(', ')})` : ''}\n`,
      );
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
  header: {
    asOf: string;
    thresholds: { inactivityDays: number; warningLeadDays: number };
    publicationSource: { stored: number; assumed: number };
  },
  items: readonly PreviewItem[],
  counts: Readonly<Record<string, number>>,
  timeZone: string,
): string {
  const lines = [
    `lifecycle preview as of ${header.asOf} (inactivity ${header.thresholds.inactivityDays} days, ` +
      `warning ${header.thresholds.warningLeadDays} days before)`,
    `publication state: from the publication records for ${header.publicationSource.stored} mailboxes, ` +
      `assumed for ${header.publicationSource.assumed} without one (active: published since creation, ` +
      'unless unpublished for inactivity; red list unknown)',
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
  if (item.unpublishAt)
    facts.push(`unpublication ${deps().lifecycle.frenchDate(Date.parse(item.unpublishAt), timeZone)}`);
  if (item.purgeAfter) facts.push(`retention over since ${item.purgeAfter}`);
  return `${item.action.padEnd(18)} ${item.address}  ${item.reason}${facts.length ? `  (${facts.join(', ')})` : ''}`;
}

function parseInstant(value: string): Date {
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new InvalidArgumentError('give an ISO 8601 instant, e.g. 2026-03-16T02:15:00Z');
  return new Date(ms);
}

/**
 * Publication states as the publication module stores them (src/publication/publication-store.ts:
 * hash `<prefix>publication:<address>`, fields `state`, `reason`), read here until that module
 * exports a batch reader; AssumedPublication for mailboxes without a record (publication disabled,
 * or not yet done). `since` is left out, as the lifecycle wiring should: the record's `since` moves
 * at every metadata republication, which must not restart an inactivity period.
 */
class StoredPublication implements PublicationStateReader {
  stored = 0;
  assumed = 0;
  readonly #redis: Redis;
  readonly #prefix: string;
  readonly #fallback: LifecycleModule.AssumedPublication;

  constructor(redis: Redis, prefix: string) {
    this.#redis = redis;
    this.#prefix = prefix;
    this.#fallback = new (deps().lifecycle.AssumedPublication)({ redis, prefix });
  }

  async statesOf(bals: readonly Bal[]): Promise<Array<PublicationView | undefined>> {
    const pipeline = this.#redis.pipeline();
    for (const bal of bals) pipeline.hmget(`${this.#prefix}publication:${bal.address}`, 'state', 'reason');
    const replies = (await pipeline.exec()) ?? [];
    const records = replies.map(([err, reply]) => {
      if (err) throw err;
      return reply as [string | null, string | null];
    });
    const missing = bals.filter((_, i) => records[i]?.[0] === null || records[i]?.[0] === undefined);
    const assumed = await this.#fallback.statesOf(missing);
    let next = 0;
    return bals.map((_, i): PublicationView | undefined => {
      const [state, reason] = records[i] ?? [null, null];
      if (state === null) {
        this.assumed += 1;
        return assumed[next++];
      }
      this.stored += 1;
      const known = (deps().publication.PUBLICATION_STATES as readonly string[]).includes(state);
      return known ? { state: state as PublicationStateName, redListed: reason === 'red-list' } : undefined;
    });
  }
}

/** The registry for reading only: the CLI never creates a mailbox, so no store is needed. */
export function readOnlyRegistry(redis: Redis, config: Config): BalRegistry {
  const { observability, registry, shared } = deps();
  return new registry.BalRegistry({
    redis,
    prefix: config.redis.prefix,
    domains: config.domains,
    clock: shared.systemClock,
    journal: new observability.MemoryAuditJournal(),
    provisioner: {
      provision: () =>
        Promise.reject(new GatewayError('INTERNAL', 'the command line reads the registry only')),
    },
  });
}
