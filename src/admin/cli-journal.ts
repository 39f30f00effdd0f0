import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { GatewayError } from '../errors/index.js';
import type { JournalQuery } from '../observability/index.js';
import type { CliIo } from './cli-context.js';

/**
 * `mssgw journal verify|search`: read this node's audit journal (`<dataDir>/journal`) without the
 * gateway running. verify follows each node's hash chain (src/observability/journal-chain.ts) and
 * exits 1 naming the first edited or removed entry; search prints matching entries.
 */
export function registerJournalCommands(program: Command, io: CliIo): void {
  const journal = program.command('journal').description('verify and search the audit journal');
  const dirOf = (opts: { dir?: string }): string =>
    path.resolve(opts.dir ?? path.join(io.loadConfig(io.env).dataDir, 'journal'));

  journal
    .command('verify')
    .description('check that no entry was edited or removed (exit 1 naming the first broken one)')
    .option('--dir <dir>', 'journal folder (default: <dataDir>/journal of the configuration)')
    .action(async (opts: { dir?: string }) => {
      const { verifyJournal } = await import('../observability/index.js');
      const dir = dirOf(opts);
      const report = await verifyJournal(dir);
      const [first, ...others] = report.broken;
      if (first !== undefined) {
        const who = first.node === undefined ? '' : ` (node ${first.node}, seq ${first.seq})`;
        const more = others.length > 0 ? `; ${others.length} more broken entries after it` : '';
        throw new GatewayError(
          'JOURNAL_CHAIN_BROKEN',
          `journal broken at ${path.join(dir, first.file)}:${first.line}${who}: ${first.reason}${more}`,
        );
      }
      const nodes = Object.entries(report.nodes)
        .map(([n, seq]) => `${n} to seq ${seq}`)
        .join(', ');
      io.stdout(
        `journal intact: ${report.entries} entries in ${report.files} files${nodes ? ` (${nodes})` : ''}\n`,
      );
    });

  journal
    .command('search')
    .description('print the entries matching every given filter, oldest first')
    .option('--dir <dir>', 'journal folder (default: <dataDir>/journal of the configuration)')
    .option('--mailbox <address>', 'entries naming this mailbox')
    .option('--person <id>', 'entries naming this person (national id: 8+RPPS or 0+ADELI)')
    .option('--event <name>', 'this event, or every event under a prefix ending in "." (auth.)')
    .option('--since <time>', 'from this ISO-8601 time (2026-03-01 or 2026-03-01T08:00:00Z)', parseTime)
    .option('--until <time>', 'up to this ISO-8601 time', parseTime)
    .option('--json', 'print JSON lines, one entry a line')
    .action(
      async (opts: {
        dir?: string;
        mailbox?: string;
        person?: string;
        event?: string;
        since?: Date;
        until?: Date;
        json?: boolean;
      }) => {
        const query: JournalQuery = {
          ...(opts.mailbox === undefined ? {} : { mailbox: opts.mailbox }),
          ...(opts.person === undefined ? {} : { person: opts.person }),
          ...(opts.event === undefined ? {} : { event: opts.event }),
          ...(opts.since === undefined ? {} : { since: opts.since }),
          ...(opts.until === undefined ? {} : { until: opts.until }),
        };
        const { searchJournal } = await import('../observability/index.js');
        let count = 0;
        for await (const entry of searchJournal(dirOf(opts), query)) {
          count += 1;
          io.stdout(opts.json ? `${JSON.stringify(entry)}\n` : tableLine(entry));
        }
        if (!opts.json) io.stderr(`${count} entries\n`);
      },
    );
}

/** time, node, event, then the other fields as key=value (pid and the chain fields left out). */
function tableLine(entry: Readonly<Record<string, unknown>>): string {
  const { time, node, pid: _pid, event, seq: _seq, prev: _prev, hash: _hash, ...rest } = entry;
  const fields = Object.entries(rest)
    .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join(' ');
  return `${String(time)}  ${String(node)}  ${String(event)}  ${fields}\n`;
}

function parseTime(value: string): Date {
  const time = Date.parse(value);
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(time)) return new Date(time);
  throw new InvalidArgumentError('give an ISO-8601 time, e.g. 2026-03-01 or 2026-03-01T08:00:00Z');
}
