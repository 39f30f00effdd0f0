import type { AddressInfo } from 'node:net';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { type ErrorCode, toGatewayError } from '../errors/index.js';
import type { AuditJournal, Logger, Metrics } from '../observability/index.js';
import { type MailboxStatusView, type RecipientDecision, routeLocal } from '../routing/index.js';
import { type SmtpHookError, replyLine, smtpError } from './replies.js';

/** What the MX and submission listeners share to report a refusal. */
export interface RefusalSink {
  readonly listener: string;
  /** Journal event name, e.g. `smtp.mx.rejected`. */
  readonly event: string;
  readonly metrics: Metrics;
  readonly journal: AuditJournal;
}

/**
 * One refusal, recorded the same way on every listener: a metric labelled by reason, a journal
 * entry with the exact reply, a log line; returns the error smtp-server turns into the reply.
 */
export function refuse(
  sink: RefusalSink,
  session: SMTPServerSession,
  log: Logger | undefined,
  refusal: { command: string; code: ErrorCode; reason: string; fields?: Record<string, unknown> },
): SmtpHookError {
  const { command, code, reason } = refusal;
  sink.metrics.smtpCommands.inc({ listener: sink.listener, command, outcome: reason });
  const entry = {
    event: sink.event,
    command,
    code,
    reply: replyLine(code),
    remote: session.remoteAddress,
    ...refusal.fields,
  };
  sink.journal.record(entry);
  log?.info(entry, 'refused');
  return smtpError(code);
}

/** Is this address an active mailbox of ours? A registry failure is a temporary refusal. */
export async function lookupLocalRecipient(
  mailboxes: { get(address: string): Promise<MailboxStatusView | null> },
  address: string,
  log: Logger | undefined,
): Promise<RecipientDecision> {
  let bal: MailboxStatusView | null;
  try {
    bal = await mailboxes.get(address);
  } catch (err) {
    log?.error({ event: 'smtp.registry_error', err: toGatewayError(err).message }, 'registry lookup failed');
    return { kind: 'refuse', code: 'REGISTRY_UNAVAILABLE', reason: 'registry_unavailable' };
  }
  return routeLocal(address, bal);
}

/** smtp-server's listen as a promise that rejects when the port cannot be bound. */
export function listenSmtp(server: SMTPServer, port: number, host: string): Promise<AddressInfo> {
  return new Promise((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(port, host, () => {
      server.server.off('error', reject);
      resolve(server.server.address() as AddressInfo);
    });
  });
}

/** Stops accepting and waits for the connections to end (smtp-server's own grace period). */
export function closeSmtp(server: SMTPServer): Promise<void> {
  return new Promise((resolve) => (server.server.listening ? server.close(() => resolve()) : resolve()));
}
