import type { Readable } from 'node:stream';
import type { TransportResult } from './delivery-plan.js';
import type { DestinationRecipient, SpoolEnvelope } from './spool-entry.js';

/** The mailbox store as the delivery worker sees it (implemented over LMTP in store/). */
export interface LocalTransport {
  deliver(envelope: { from: string; to: string[] }, message: () => Readable): Promise<TransportResult[]>;
  /**
   * Whether the message with this spool id is already in the recipient's mailbox (an attempt cut
   * short by a crash after the store took it). Throws when the store cannot be asked.
   */
  holds(recipient: string, message: { spoolId: string; receivedAt: Date }): Promise<boolean>;
}

export interface AttemptRequest {
  readonly envelope: SpoolEnvelope;
  /** The recipients still pending at this destination. */
  readonly recipients: readonly DestinationRecipient[];
  readonly message: () => Readable;
  /**
   * An earlier attempt may have reached the store without our record of it (a crash, a connection
   * lost after the final dot): ask the store before delivering again (exactly once, §6).
   */
  readonly verify?: boolean;
}

/** One attempt at one destination: a result per recipient answered. */
export interface DestinationAttempt {
  readonly results: readonly TransportResult[];
  readonly remote?: { readonly host: string; readonly dn?: string };
  readonly remoteDsn?: boolean;
  /**
   * Metric label of the attempt: `ok`, a remote reply class (`remote_4xx`, `remote_5xx`), or why no
   * recipient got an answer (`connect_failed`, `cert_revoked`, `store_unreachable`…).
   */
  readonly reason: string;
}

export interface DestinationTransport {
  attempt(destination: string, request: AttemptRequest): Promise<DestinationAttempt>;
}

/** Every pending recipient gets the same answer (the store or the remote was not reached). */
export function sameForAll(
  recipients: readonly DestinationRecipient[],
  result: Omit<TransportResult, 'recipient'>,
): TransportResult[] {
  return recipients.map((r) => ({ ...result, recipient: r.address }));
}

/** A label from the replies themselves: `ok` when all accepted, else the worst reply class. */
export function reasonOfReplies(results: readonly TransportResult[]): string {
  if (results.some((r) => r.outcome === 'permanent')) return 'remote_5xx';
  if (results.some((r) => r.outcome === 'temporary')) return 'remote_4xx';
  return 'ok';
}

/** The store over LMTP: it answers per recipient; unreachable means all temporary. */
export function localDestination(transport: LocalTransport): DestinationTransport {
  const unreachable = (recipients: readonly DestinationRecipient[], err: unknown): DestinationAttempt => ({
    results: sameForAll(recipients, {
      outcome: 'temporary',
      code: 451,
      enhancedCode: '4.4.1',
      text: `mailbox store unreachable: ${(err as Error).message}`,
    }),
    reason: 'store_unreachable',
  });
  return {
    async attempt(_destination, { envelope, recipients, message, verify }) {
      const found: TransportResult[] = [];
      let toDeliver = recipients;
      if (verify) {
        try {
          const held = await Promise.all(
            recipients.map((r) =>
              transport.holds(r.address, { spoolId: envelope.id, receivedAt: new Date(envelope.receivedAt) }),
            ),
          );
          toDeliver = recipients.filter((_, i) => !held[i]);
          for (const r of recipients.filter((_, i) => held[i]))
            found.push({
              recipient: r.address,
              outcome: 'delivered',
              code: 250,
              enhancedCode: '2.0.0',
              text: 'already in the mailbox (an earlier attempt reached the store)',
            });
        } catch (err) {
          return unreachable(recipients, err);
        }
      }
      if (toDeliver.length === 0) return { results: found, reason: 'ok' };
      try {
        const results = await transport.deliver(
          { from: envelope.mailFrom, to: toDeliver.map((r) => r.address) },
          message,
        );
        return { results: [...found, ...results], reason: reasonOfReplies(results) };
      } catch (err) {
        const attempt = unreachable(toDeliver, err);
        return { ...attempt, results: [...found, ...attempt.results] };
      }
    },
  };
}
