import type { Command } from 'commander';
import type { DirectoryCallRecord, DriftReport, PublicationState } from '../publication/index.js';
import type { CliContext } from './cli-context.js';

/**
 * Publication in the national directory, as `mssgw` prints it: the `publication:` block of
 * `bal show`, and `mssgw directory drift`.
 */

/** The `publication:` block of `bal show`: state, since, why, last error, last directory answer. */
export function formatPublication(state: PublicationState | null): string {
  if (state === null) return 'publication:  not tracked yet (queued at the next start of the gateway)\n';
  const lines: Array<[string, string | undefined]> = [
    ['state', state.state],
    ['since', state.since],
    ['target', state.state === 'pending' || state.state === 'failed' ? state.target : undefined],
    ['reason', state.reason],
    ['holds', state.holds.length === 0 ? undefined : state.holds.join(', ')],
    ['inDirectory', state.listed],
    ['change', state.changePending ? 'queued for the directory' : undefined],
    ['attempts', state.attempts === 0 ? undefined : String(state.attempts)],
    ['lastError', state.error && `${state.error.message} (${state.error.code}, ${state.error.at})`],
    ['lastCall', state.lastCall && formatCall(state.lastCall)],
  ];
  const shown = lines.filter((l): l is [string, string] => l[1] !== undefined);
  const width = Math.max(...shown.map(([k]) => k.length)) + 1;
  return `publication:\n${shown.map(([k, v]) => `  ${`${k}:`.padEnd(width)} ${v}\n`).join('')}`;
}

function formatCall(call: DirectoryCallRecord): string {
  const status = call.status === undefined ? 'no answer' : `HTTP ${call.status}`;
  const detail = call.detail === undefined ? '' : ` (${call.detail})`;
  return `${call.operation} ${call.outcome}, ${status}${detail}, ${call.at}`;
}

export function formatDrift(report: DriftReport): string {
  const asOf =
    report.extractionAsOf === undefined ? '' : ` against the extraction of ${report.extractionAsOf}`;
  const list = (addresses: readonly string[], count: number) =>
    addresses.map((a) => `  ${a}\n`).join('') +
    (count > addresses.length
      ? `  (and ${count - addresses.length} more; --json lists them up to the cap)\n`
      : '');
  const { publishedMissing: missing, unpublishedPresent: present, skipped } = report;
  return (
    `drift report of ${report.generatedAt}${asOf}\n` +
    `compared: ${report.compared.published} published, ${report.compared.unpublished} unpublished\n` +
    `published but missing from the extraction: ${missing.count}\n${list(missing.addresses, missing.count)}` +
    `unpublished but still in the extraction: ${present.count}\n${list(present.addresses, present.count)}` +
    `not compared: ${skipped.recent} changed since the extraction, ` +
    `${skipped.typeNotExtracted} of a type the extraction does not list (APP, CAB)\n`
  );
}

/**
 * `mssgw directory drift`. Finds the `directory` command group if another module registered it
 * (the mirrors' `directory status`), else creates it.
 */
export function registerDirectoryDriftCommand(program: Command, ctx: CliContext): void {
  const directory =
    program.commands.find((c) => c.name() === 'directory') ??
    program.command('directory').description('the national directory: mirrors and publication');
  directory
    .command('drift')
    .description('show the last comparison of our published mailboxes with the national extraction')
    .option('--json', 'print the report as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const report = await ctx.client(cmd).directoryDrift();
      ctx.io.stdout(opts.json ? `${JSON.stringify(report, null, 2)}\n` : formatDrift(report));
    });
}
