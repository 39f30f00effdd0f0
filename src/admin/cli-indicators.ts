import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Command } from 'commander';
import type * as LifecycleModule from '../lifecycle/index.js';
import type { CliIo } from './cli-context.js';
import { lifecycleDeps, readOnlyRegistry } from './cli-lifecycle.js';
import { withGatewayRedis } from './cli-redis.js';

/**
 * `mssgw indicators export --month YYYY-MM [--out FILE]`: the monthly usage report for the agency, a
 * CSV with one row per mailbox (columns documented in src/lifecycle/indicator-report.ts), built from
 * the daily aggregates in the gateway's Redis. With --out the file appears complete or not at all
 * (written aside, then renamed).
 */
export function registerIndicatorCommands(program: Command, io: CliIo): void {
  const indicators = program.command('indicators').description('usage indicators reported to the agency');

  indicators
    .command('export')
    .description('write the monthly CSV report: per mailbox logins, last connection, messages, DSN/MDN')
    .requiredOption('--month <YYYY-MM>', 'the month to report, e.g. 2026-03')
    .option('--out <file>', 'write the CSV to this file (default: standard output)')
    .action(async (opts: { month: string; out?: string }, command: Command) => {
      const { lifecycle: lib, registry } = await lifecycleDeps();
      // Checked here rather than by an option parser, which would load the lifecycle module for every command.
      if (!lib.isMonth(opts.month)) {
        command.error(
          `error: option '--month <YYYY-MM>' argument '${opts.month}' is invalid. give a month as YYYY-MM, e.g. 2026-03`,
          { code: 'commander.invalidArgument' },
        );
      }
      const { indicatorCsvHeader, indicatorCsvLine } = lib;
      const config = io.loadConfig(io.env);
      const { timeZone, indicatorsRetentionDays } = config.lifecycle;
      await withGatewayRedis(config, 'REGISTRY_UNAVAILABLE', async (redis) => {
        const report = new lib.IndicatorReport({
          redis,
          prefix: config.redis.prefix,
          timeZone,
          retentionDays: indicatorsRetentionDays,
          registry: readOnlyRegistry(redis, config),
          activity: registry.ActivityStore.withPrefix(redis, config.redis.prefix),
        });
        if (opts.out === undefined) {
          io.stdout(indicatorCsvHeader());
          for await (const row of report.rows(opts.month)) io.stdout(indicatorCsvLine(row));
          return;
        }
        const rows = await writeCsvFile(opts.out, report.rows(opts.month), lib);
        io.stderr(`${rows} mailboxes of ${opts.month} written to ${opts.out}\n`);
      });
    });
}

async function writeCsvFile(
  file: string,
  rows: AsyncIterable<Parameters<typeof LifecycleModule.indicatorCsvLine>[0]>,
  { indicatorCsvHeader, indicatorCsvLine }: typeof LifecycleModule,
): Promise<number> {
  const target = path.resolve(file);
  const partial = `${target}.partial-${process.pid}`;
  const handle = await open(partial, 'w', 0o640);
  let count = 0;
  try {
    let buffer = indicatorCsvHeader();
    for await (const row of rows) {
      buffer += indicatorCsvLine(row);
      count += 1;
      if (buffer.length >= 64 * 1024) {
        await handle.write(buffer);
        buffer = '';
      }
    }
    await handle.write(buffer);
    await handle.sync();
    await handle.close();
    await rename(partial, target);
    return count;
  } catch (err) {
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw err;
  }
}
