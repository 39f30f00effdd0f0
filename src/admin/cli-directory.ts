import { type Command, InvalidArgumentError } from 'commander';
import type { MirrorStatus, RefreshResult } from '../directory/index.js';
import { GatewayError } from '../errors/index.js';
import type { CliIo } from './cli-context.js';
import { gatewayRedisClient, withGatewayRedis } from './cli-redis.js';

/**
 * `mssgw directory status|refresh`: the national directory mirrors. Both read the gateway's Redis
 * directly (its URL from the configuration, the embedded one under dataDir otherwise); `refresh`
 * hands a job to the running gateway processes and waits for its outcome.
 */
export function registerDirectoryCommands(program: Command, io: CliIo): void {
  const directory = program
    .command('directory')
    .description('national directory mirrors: whitelist, BAL extraction, revocation lists');

  directory
    .command('status')
    .description("each mirror's source, copy in service (version, age, size, entries) and last refresh")
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const { readMirrorStatuses } = await import('../directory/index.js');
      const config = io.loadConfig(io.env);
      await withGatewayRedis(config, 'DIRECTORY_UNAVAILABLE', async (redis) => {
        const rows = await readMirrorStatuses(redis, config, new Date());
        io.stdout(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : rows.map(formatStatus).join('\n'));
      });
    });

  directory
    .command('refresh [mirror]')
    .description('refresh a mirror now (all when none is named) and print the outcome')
    .option('--accept-shrink', 'accept a copy that lost more entries than maxShrinkShare allows')
    .option('--timeout <seconds>', 'how long to wait for the outcome', parseSeconds, 600)
    .action(async (mirror: string | undefined, opts: { acceptShrink?: boolean; timeout: number }) => {
      const { configuredMirrors, requestRefresh } = await import('../directory/index.js');
      const config = io.loadConfig(io.env);
      const known = configuredMirrors(config).map((m) => m.name);
      if (mirror !== undefined && !known.includes(mirror))
        throw new GatewayError('MIRROR_UNKNOWN', `no mirror ${mirror}; configured: ${known.join(', ')}`);
      // Fail fast when Redis cannot be reached, before BullMQ waits for it forever.
      await withGatewayRedis(config, 'DIRECTORY_UNAVAILABLE', (redis) => redis.ping());
      const results: RefreshResult[] = [];
      for (const name of mirror === undefined ? known : [mirror]) {
        const result = await requestRefresh({
          connect: () => gatewayRedisClient(config, null),
          redisPrefix: config.redis.prefix,
          mirror: name,
          ...(opts.acceptShrink ? { acceptShrink: true } : {}),
          timeoutMs: opts.timeout * 1000,
        });
        results.push(result);
        io.stdout(`${formatResult(result)}\n`);
      }
      const bad = results.filter((r) => r.outcome === 'refused' || r.outcome === 'failed');
      if (bad.length > 0)
        throw new GatewayError(
          bad.some((r) => r.outcome === 'refused') ? 'MIRROR_COPY_REFUSED' : 'MIRROR_SOURCE_UNAVAILABLE',
          `${bad.map((r) => r.mirror).join(', ')}: the last good copy stays in service`,
        );
    });
}

function parseSeconds(value: string): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('give a number of seconds, e.g. 600');
  return n;
}

function duration(seconds: number): string {
  const s = Math.round(seconds);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.round(s / 60)} min`;
  if (s < 172800) return `${(s / 3600).toFixed(1)} h`;
  return `${(s / 86400).toFixed(1)} d`;
}

function size(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

function formatStatus(s: MirrorStatus): string {
  const lines = [`${s.mirror}`, `  source:      ${s.configuredSource} (every ${duration(s.refreshSeconds)})`];
  if (s.version === undefined) lines.push('  in service:  none yet');
  else {
    const facts = [
      `version ${s.version}`,
      `${s.entries ?? '?'} entries`,
      s.sizeBytes === undefined ? undefined : size(s.sizeBytes),
      s.ageSeconds === undefined ? undefined : `age ${duration(s.ageSeconds)}`,
    ].filter(Boolean);
    lines.push(`  in service:  ${facts.join(', ')}`);
    if (s.source && s.source !== s.configuredSource) lines.push(`  copied from: ${s.source}`);
    if (s.acceptedAt) lines.push(`  accepted:    ${s.acceptedAt}`);
    if (s.added !== undefined || s.removed !== undefined)
      lines.push(`  changes:     +${s.added ?? 0} −${s.removed ?? 0} since the previous copy`);
    if (s.generatedAt) lines.push(`  generated:   ${s.generatedAt}`);
    if (s.rejected)
      lines.push(
        `  left out:    ${s.rejected} malformed entries`,
        ...(s.rejectedEntries ?? '').split('\n').map((problem) => `    ${problem}`),
      );
    if (s.nextUpdate) lines.push(`  next update: ${s.nextUpdate}`);
  }
  lines.push(
    `  last try:    ${s.lastAttemptAt ? `${s.lastAttemptAt} ${s.lastOutcome ?? '?'} (${s.lastReason ?? '?'})` : 'never'}`,
  );
  lines.push(`  last error:  ${s.lastError || '-'}`);
  return `${lines.join('\n')}\n`;
}

function formatResult(r: RefreshResult): string {
  const facts = [
    r.version === undefined ? undefined : `version ${r.version}`,
    r.entries === undefined ? undefined : `${r.entries} entries`,
    r.added === undefined ? undefined : `+${r.added}`,
    r.removed === undefined ? undefined : `−${r.removed}`,
  ].filter(Boolean);
  const tail = r.error ? `: ${r.error}` : '';
  return `${r.mirror}: ${r.outcome} (${r.reason})${facts.length ? `, ${facts.join(', ')}` : ''}${tail}`;
}
