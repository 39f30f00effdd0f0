import { InvalidArgumentError, type Command } from 'commander';
import type { CliContext } from './cli-context.js';
import type { QueueJobView } from './queue-routes.js';

const STATES = ['active', 'waiting', 'delayed', 'failed'];

/**
 * `mssgw queue ...`: the delivery queue as an operator sees it (issue #4), each command one admin
 * API call. A job is one message for one destination: `local` (our store) or a domain at another
 * operator; its id is `<spool id>~<destination>`.
 */
export function registerQueueCommands(program: Command, ctx: CliContext): Command {
  const queue = program
    .command('queue')
    .description('list, inspect, retry and delete delivery jobs (one per message and destination)');
  const out = (text: string) => ctx.io.stdout(text);

  queue
    .command('list')
    .description('jobs not yet finished, oldest message first')
    .option('--state <state>', `only jobs in this state: ${STATES.join(', ')}`, (v: string) => {
      if (!STATES.includes(v)) throw new InvalidArgumentError(`use one of ${STATES.join(', ')}`);
      return v;
    })
    .option('--limit <n>', 'at most this many jobs (default 1000)', (v: string) => {
      if (!/^\d+$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('a positive whole number');
      return Number(v);
    })
    .option('--json', 'print { items } as JSON')
    .action(async (opts: { state?: string; limit?: number; json?: boolean }, cmd: Command) => {
      const page = await ctx.client(cmd).listQueue({
        ...(opts.state ? { state: opts.state } : {}),
        ...(opts.limit ? { limit: opts.limit } : {}),
      });
      if (opts.json) return out(`${JSON.stringify(page, null, 2)}\n`);
      if (page.items.length === 0) return out('queue empty\n');
      out(page.items.map(line).join('\n') + '\n');
    });

  queue
    .command('show')
    .description('one job, with each recipient’s attempts and last result')
    .argument('<id>', 'job id, <spool id>~<destination>')
    .option('--json', 'print the job as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const job = await ctx.client(cmd).showQueueJob(id);
      out(opts.json ? `${JSON.stringify(job, null, 2)}\n` : details(job));
    });

  queue
    .command('retry')
    .description('attempt a waiting job now')
    .argument('<id>', 'job id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const job = await ctx.client(cmd).retryQueueJob(id);
      out(`retrying ${job.id} (${job.state})\n`);
    });

  queue
    .command('delete')
    .description('give up on a job: its pending recipients fail and the sender gets a failure DSN')
    .argument('<id>', 'job id')
    .action(async (id: string, _opts: unknown, cmd: Command) => {
      const job = await ctx.client(cmd).deleteQueueJob(id);
      out(`deleted ${job.id}; the sender is notified\n`);
    });
  return queue;
}

function line(j: QueueJobView): string {
  const next = j.nextAttemptAt ? ` next ${j.nextAttemptAt}` : '';
  return `${j.id}  ${j.state}  from <${j.data.sender}> to ${j.data.recipients.length} recipient(s), ${j.data.size} bytes, received ${j.data.receivedAt}${next}  node ${j.node}`;
}

interface ProgressLine {
  readonly address: string;
  readonly state: string;
  readonly attempts: number;
  readonly lastResult?: string;
}

function details(j: QueueJobView): string {
  const lines = [
    `job         ${j.id}`,
    `state       ${j.state}${j.nextAttemptAt ? `, next attempt ${j.nextAttemptAt}` : ''}`,
    `destination ${j.data.destination}`,
    `sender      <${j.data.sender}>`,
    `received    ${j.data.receivedAt}, ${j.data.size} bytes${j.data.messageId ? `, ${j.data.messageId}` : ''}`,
  ];
  const progress = j.progress as { recipients?: ProgressLine[] } | undefined;
  const recipients: ProgressLine[] =
    progress?.recipients ?? j.data.recipients.map((address) => ({ address, state: 'pending', attempts: 0 }));
  for (const r of recipients) {
    const last = r.lastResult ? `: ${r.lastResult}` : '';
    lines.push(`  ${r.address}  ${r.state}, ${r.attempts} attempt(s)${last}`);
  }
  return lines.join('\n') + '\n';
}
