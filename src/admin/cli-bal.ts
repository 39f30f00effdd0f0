import { InvalidArgumentError, Option, type Command } from 'commander';
import type {
  Bal,
  BalMetadataPatch,
  BalPage,
  BalStatus,
  BalType,
  MAX_LIST_LIMIT as REGISTRY_MAX_LIST_LIMIT,
} from '../registry/index.js';
import type { BalView } from './admin-client.js';
import { registerBalSecretCommands } from './cli-bal-secret.js';
import type { CliContext } from './cli-context.js';
import { formatPublication } from './cli-publication.js';

/**
 * The registry's vocabulary, written here so that defining the options does not load the registry
 * (and the PKI and forge behind it) for every command; tsc refuses a copy that drifts: a value the
 * registry does not know, a type or status left out, another page limit.
 */
const BAL_TYPES = ['PER', 'ORG', 'APP', 'CAB'] as const satisfies readonly BalType[];
const BAL_STATUSES = ['active', 'suspended', 'deleted'] as const satisfies readonly BalStatus[];
const MAX_LIST_LIMIT: typeof REGISTRY_MAX_LIST_LIMIT = 1000;
type Unlisted = [
  Exclude<BalType, (typeof BAL_TYPES)[number]>,
  Exclude<BalStatus, (typeof BAL_STATUSES)[number]>,
];
const _everyListed: Unlisted extends [never, never] ? true : never = true;

/**
 * `mssgw bal ...`: mailbox commands, each one admin API call. Output is for people by default
 * (key: value lines, a table for lists) and JSON with --json, for scripts.
 */
export function registerBalCommands(program: Command, ctx: CliContext): Command {
  const bal = program
    .command('bal')
    .description('create, list, show, update, suspend, resume and delete mailboxes (BAL); set their secret');
  const out = (text: string) => ctx.io.stdout(text);

  bal
    .command('create')
    .description('create a mailbox and provision it in the mail store')
    .argument('<address>', 'mailbox address, local@domain in one of our domains')
    .requiredOption('--type <type>', `mailbox type: ${BAL_TYPES.join(', ')}`)
    .requiredOption(
      '--owner <id>',
      'owner: 8+RPPS or 0+ADELI for PER; national structure id for ORG, APP, CAB',
    )
    .option('--liste-rouge', 'red list: never publish it in the national directory')
    .option('--description <text>', 'what the mailbox is for (published)')
    .option('--service <text>', 'service of the organisation it belongs to (published)')
    .option('--responsible <text>', 'who runs it day to day (published; not for PER)')
    .option('--json', 'print the mailbox as JSON')
    .action(
      async (
        address: string,
        opts: { type: string; owner: string; json?: boolean } & MetadataOptions,
        cmd: Command,
      ) => {
        const created = await ctx
          .client(cmd)
          .createBal({ address, type: opts.type, owner: opts.owner, ...metadataPatch(opts) });
        out(opts.json ? toJson(created) : `created ${created.address}\n${formatBal(created)}`);
      },
    );

  bal
    .command('update')
    .description('change the published metadata of a mailbox (address, type and owner never change)')
    .argument('<address>', 'mailbox address')
    .option('--liste-rouge', 'put it on the red list: it is taken out of the national directory')
    .option('--no-liste-rouge', 'take it off the red list: it is published again')
    .option('--description <text>', "what the mailbox is for ('' removes it)")
    .option('--service <text>', "service of the organisation ('' removes it)")
    .option('--responsible <text>', "who runs it day to day ('' removes it; not for PER)")
    .option('--json', 'print the mailbox as JSON')
    .action(async (address: string, opts: MetadataOptions & { json?: boolean }, cmd: Command) => {
      const patch = metadataPatch(opts);
      if (Object.keys(patch).length === 0) {
        cmd.error(
          'error: nothing to change: give --liste-rouge, --no-liste-rouge, --description, --service or --responsible',
          { exitCode: 2, code: 'mssgw.nothingToChange' },
        );
      }
      const updated = await ctx.client(cmd).updateBal(address, patch);
      out(opts.json ? toJson(updated) : `updated ${updated.address}\n${formatBal(updated)}`);
    });

  bal
    .command('list')
    .description('list mailboxes in address order, a page at a time')
    .addOption(new Option('--status <status>', 'only this status').choices(BAL_STATUSES))
    .addOption(new Option('--type <type>', `only this type: ${BAL_TYPES.join(', ')}`).argParser(upperChoice))
    .option('--limit <n>', `page size, 1 to ${MAX_LIST_LIMIT} (default 100)`, parseLimit)
    .option('--cursor <cursor>', 'continue after a previous page (printed at its end)')
    .option('--json', 'print the page as JSON: { items, nextCursor? }')
    .action(async (opts: ListOptions, cmd: Command) => {
      const { json, ...query } = opts;
      const page = await ctx.client(cmd).listBals(query);
      out(json ? toJson(page) : formatPage(page));
    });

  bal
    .command('show')
    .description('show one mailbox')
    .argument('<address>', 'mailbox address')
    .option('--json', 'print the mailbox as JSON')
    .action(async (address: string, opts: { json?: boolean }, cmd: Command) => {
      const found = await ctx.client(cmd).getBal(address);
      out(opts.json ? toJson(found) : formatBalView(found));
    });

  bal
    .command('suspend')
    .description('suspend a mailbox: mail to it is refused and nobody can open it, until resumed')
    .argument('<address>', 'mailbox address')
    .option('--reason <text>', 'why (kept with the mailbox and in the audit journal)')
    .action(async (address: string, opts: { reason?: string }, cmd: Command) => {
      const changed = await ctx.client(cmd).suspendBal(address, opts.reason);
      out(`${changed.address} is now ${changed.status}\n`);
    });

  bal
    .command('resume')
    .description('make a suspended mailbox active again')
    .argument('<address>', 'mailbox address')
    .action(async (address: string, _opts: unknown, cmd: Command) => {
      const changed = await ctx.client(cmd).resumeBal(address);
      out(`${changed.address} is now ${changed.status}\n`);
    });

  bal
    .command('delete')
    .description('delete a mailbox for good: its address can never be created again')
    .argument('<address>', 'mailbox address')
    .option('--yes', 'confirm the deletion (required)')
    .action(async (address: string, opts: { yes?: boolean }, cmd: Command) => {
      if (!opts.yes) {
        // A usage error (exit 2): nothing was sent to the API.
        cmd.error(
          `error: refusing to delete ${address} without --yes: deletion is final and the address can never be reused`,
          { exitCode: 2, code: 'mssgw.confirmationRequired' },
        );
      }
      const changed = await ctx.client(cmd).deleteBal(address);
      out(`${changed.address} is now ${changed.status}\n`);
    });

  registerBalSecretCommands(bal, ctx);
  return bal;
}

interface MetadataOptions {
  listeRouge?: boolean;
  description?: string;
  service?: string;
  responsible?: string;
}

/** The metadata options given on the command line, as an API patch (absent ones left out). */
function metadataPatch(opts: MetadataOptions): BalMetadataPatch {
  const patch: { -readonly [K in keyof BalMetadataPatch]: BalMetadataPatch[K] } = {};
  if (opts.listeRouge !== undefined) patch.listeRouge = opts.listeRouge;
  for (const field of ['description', 'service', 'responsible'] as const) {
    const value = opts[field];
    if (value !== undefined) patch[field] = value;
  }
  return patch;
}

interface ListOptions {
  status?: (typeof BAL_STATUSES)[number];
  type?: (typeof BAL_TYPES)[number];
  limit?: number;
  cursor?: string;
  json?: boolean;
}

function upperChoice(value: string): (typeof BAL_TYPES)[number] {
  const upper = value.toUpperCase();
  const match = BAL_TYPES.find((t) => t === upper);
  if (match === undefined) throw new InvalidArgumentError(`Allowed choices are ${BAL_TYPES.join(', ')}.`);
  return match;
}

function parseLimit(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIST_LIMIT) {
    throw new InvalidArgumentError(`give a whole number from 1 to ${MAX_LIST_LIMIT}`);
  }
  return n;
}

function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

const SHOW_FIELDS = [
  'address',
  'type',
  'owner',
  'status',
  'statusReason',
  'createdAt',
  'updatedAt',
  'suspendedAt',
  'deletedAt',
  'listeRouge',
  'description',
  'service',
  'responsible',
] as const satisfies ReadonlyArray<keyof Bal>;

/** `key: value` lines, aligned, absent fields left out. */
export function formatBal(bal: Bal): string {
  const width = Math.max(...SHOW_FIELDS.map((f) => f.length)) + 1;
  return SHOW_FIELDS.filter((f) => bal[f] !== undefined)
    .map((f) => `${`${f}:`.padEnd(width)} ${String(bal[f])}\n`)
    .join('');
}

/** A mailbox, then its publication state when the gateway publishes (`bal show`). */
export function formatBalView(view: BalView): string {
  const { publication, ...bal } = view;
  return publication === undefined ? formatBal(bal) : formatBal(bal) + formatPublication(publication);
}

/** A table of the page, then how to get the next page when there is one. */
export function formatPage(page: BalPage): string {
  if (page.items.length === 0) return 'no mailboxes\n';
  const header = ['ADDRESS', 'TYPE', 'STATUS', 'OWNER', 'CREATED'];
  const rows = page.items.map((b) => [b.address, b.type, b.status, b.owner, b.createdAt]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .concat('\n');
  const more = page.nextCursor === undefined ? '' : `(more: mssgw bal list --cursor ${page.nextCursor})\n`;
  return line(header) + rows.map(line).join('') + more;
}
