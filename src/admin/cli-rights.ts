import { InvalidArgumentError, type Command } from 'commander';
import type { AccessibleBal, GrantRequest, GrantSubject, GrantView } from '../registry/index.js';
import type { CliContext } from './cli-context.js';

/**
 * `mssgw rights ...`: who else may open a mailbox (ARCHITECTURE.md §4), each command one admin API
 * call. Output is for people by default and JSON with --json, for scripts.
 */
export function registerRightsCommands(program: Command, ctx: CliContext): Command {
  const rights = program
    .command('rights')
    .description('grant, revoke and list rights on mailboxes (delegate, member, application)');
  const out = (text: string) => ctx.io.stdout(text);

  rights
    .command('grant')
    .description('give a person or an application certificate a right on a mailbox (replaces theirs)')
    .argument('<address>', 'mailbox address')
    .option('--delegate <id>', 'a person (8+RPPS or 0+ADELI) reads and/or sends for the owner; needs --scope')
    .option('--member <id>', 'a person co-manages an ORG or CAB mailbox (read and send)')
    .option('--manager <id>', 'a member who may also add and remove members and managers (in the portal)')
    .option('--application-dn <dn>', 'an application certificate opens an APP mailbox (read and send)')
    .option('--scope <scope>', 'read or send; repeat for both (delegate only)', collectScope)
    .option('--expires <instant>', 'ISO 8601 instant the right stops working, e.g. 2026-03-31T18:00:00Z')
    .option('--json', 'print the grant as JSON')
    .action(async (address: string, opts: GrantOptions, cmd: Command) => {
      const granted = await ctx.client(cmd).grantRight(address, grantRequest(opts, cmd));
      out(opts.json ? toJson(granted) : `granted ${describeGrant(granted)} on ${granted.address}\n`);
    });

  rights
    .command('revoke')
    .description("remove a person's or a certificate's right on a mailbox")
    .argument('<address>', 'mailbox address')
    .option('--person <id>', 'the person (national id) whose delegate or member right goes')
    .option('--application-dn <dn>', 'the certificate whose application binding goes')
    .action(async (address: string, opts: { person?: string; applicationDn?: string }, cmd: Command) => {
      const { person, applicationDn } = opts;
      if ((person === undefined) === (applicationDn === undefined)) {
        usage(cmd, 'name exactly one of --person ID or --application-dn DN');
      }
      const subject = person === undefined ? { certificateDn: applicationDn ?? '' } : { person };
      const removed = await ctx.client(cmd).revokeRight(address, subject);
      out(`revoked ${removed.right} of ${describeSubject(removed.subject)} on ${removed.address}\n`);
    });

  rights
    .command('list')
    .description('list the rights granted on a mailbox (its owner is in: mssgw bal show)')
    .argument('<address>', 'mailbox address')
    .option('--json', 'print { items } as JSON')
    .action(async (address: string, opts: { json?: boolean }, cmd: Command) => {
      const answer = await ctx.client(cmd).listRights(address);
      out(opts.json ? toJson(answer) : formatGrants(address, answer.items));
    });

  rights
    .command('for-person')
    .description('which mailboxes a person may open: owned PER mailboxes and rights granted')
    .argument('<id>', 'national id: 8+RPPS or 0+ADELI')
    .option('--json', 'print { nationalId, items } as JSON')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const answer = await ctx.client(cmd).balsForPerson(id);
      out(opts.json ? toJson(answer) : formatAccessible(answer.nationalId, answer.items));
    });

  return rights;
}

interface GrantOptions {
  delegate?: string;
  member?: string;
  manager?: string;
  applicationDn?: string;
  scope?: string[];
  expires?: string;
  json?: boolean;
}

function grantRequest(opts: GrantOptions, cmd: Command): GrantRequest {
  const given = [
    opts.delegate === undefined ? [] : [{ right: 'delegate', person: opts.delegate }],
    opts.member === undefined ? [] : [{ right: 'member', person: opts.member }],
    opts.manager === undefined ? [] : [{ right: 'manager', person: opts.manager }],
    opts.applicationDn === undefined ? [] : [{ right: 'application', certificateDn: opts.applicationDn }],
  ].flat();
  const [subject] = given;
  if (given.length !== 1 || subject === undefined) {
    usage(cmd, 'name exactly one of --delegate ID, --member ID, --manager ID or --application-dn DN');
  }
  return {
    ...subject,
    ...(opts.scope === undefined ? {} : { scopes: opts.scope }),
    ...(opts.expires === undefined ? {} : { expiresAt: opts.expires }),
  };
}

/** A usage error (exit 2): nothing is sent to the API. */
function usage(cmd: Command, message: string): never {
  cmd.error(`error: ${message}`, { exitCode: 2, code: 'mssgw.usage' });
}

function collectScope(value: string, previous: string[] | undefined): string[] {
  const scope = value.trim().toLowerCase();
  if (scope !== 'read' && scope !== 'send') throw new InvalidArgumentError('give read or send');
  return [...(previous ?? []), scope];
}

function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function describeSubject(subject: GrantSubject): string {
  return subject.kind === 'person' ? `person ${subject.nationalId}` : `certificate "${subject.dn}"`;
}

function describeGrant(grant: GrantView): string {
  const until = grant.expiresAt === undefined ? '' : `, until ${grant.expiresAt}`;
  return `${grant.right} to ${describeSubject(grant.subject)} (${grant.scopes.join('+')}${until})`;
}

/** Columns padded to their widest cell, the last one left ragged. */
function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]?.length ?? 0)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .concat('\n');
  return line(header) + rows.map(line).join('');
}

function formatGrants(address: string, grants: readonly GrantView[]): string {
  if (grants.length === 0) return `no rights granted on ${address.trim().toLowerCase()}\n`;
  const rows = grants.map((g) => [
    g.right,
    g.subject.kind === 'person' ? g.subject.nationalId : g.subject.dn,
    g.scopes.join('+'),
    g.expiresAt === undefined ? '-' : `${g.expiresAt}${g.expired ? ' (expired)' : ''}`,
    g.grantedBy,
  ]);
  return table(['RIGHT', 'SUBJECT', 'SCOPES', 'EXPIRES', 'GRANTED-BY'], rows);
}

function formatAccessible(nationalId: string, items: readonly AccessibleBal[]): string {
  if (items.length === 0) return `person ${nationalId} may open no mailbox\n`;
  const rows = items.map((b) => [b.bal, b.type, b.status, b.right, b.scopes.join('+'), b.expiresAt ?? '-']);
  return table(['ADDRESS', 'TYPE', 'STATUS', 'RIGHT', 'SCOPES', 'EXPIRES'], rows);
}
