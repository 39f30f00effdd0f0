import { RELAY_FAILURES, RELAY_STATUS_DETAIL, TRUST_FAILURES, type RelayTransport } from '../relay/index.js';
import type { TransportResult } from './delivery-plan.js';
import { type DestinationTransport, reasonOfReplies, sameForAll } from './destination-transport.js';

export interface RelayDestinationOptions {
  /** Attempts refused for trust before the recipients fail (config relay.trustRetryAttempts). */
  readonly trustRetryAttempts: number;
}

/**
 * The outbound relay as a destination of the delivery queue: one transaction per attempt with the
 * pending recipients of one domain. A failure before any reply (lookup, connection, TLS, trust)
 * answers for every recipient; trust refusals are retried a few times, since a whitelist refresh
 * or an operator migration may fix them, then fail with the reason in the DSN.
 */
export function relayDestination(
  relay: RelayTransport,
  options: RelayDestinationOptions,
): DestinationTransport {
  return {
    async attempt(domain, { envelope, recipients, message }) {
      const attempt = await relay.send(domain, {
        from: envelope.mailFrom,
        recipients: recipients.map((r) => ({
          address: r.address,
          ...(r.dsn?.notify ? { notify: r.dsn.notify } : {}),
          ...(r.dsn?.orcpt ? { orcpt: r.dsn.orcpt } : {}),
        })),
        ...(envelope.dsn?.ret ? { ret: envelope.dsn.ret } : {}),
        ...(envelope.dsn?.envid ? { envid: envelope.dsn.envid } : {}),
        size: envelope.size,
        message,
      });
      const remote = attempt.remote ? { remote: attempt.remote } : {};
      const remoteDsn = attempt.remoteDsn === undefined ? {} : { remoteDsn: attempt.remoteDsn };
      if (!attempt.failure) {
        const results: TransportResult[] = [...attempt.replies];
        return { results, reason: reasonOfReplies(results), ...remote, ...remoteDsn };
      }
      const { reason, details } = attempt.failure;
      const attempts = Math.max(0, ...recipients.map((r) => r.attempts)) + 1;
      const temporary = TRUST_FAILURES.has(reason)
        ? attempts < options.trustRetryAttempts
        : attempt.failure.temporary;
      const where = details.host ? ` (${details.host}${details.dn ? `, ${details.dn}` : ''})` : '';
      const reply = details.reply ? `: ${details.reply}` : '';
      return {
        results: sameForAll(recipients, {
          outcome: temporary ? 'temporary' : 'permanent',
          code: temporary ? 451 : 554,
          enhancedCode: `${temporary ? 4 : 5}.${RELAY_STATUS_DETAIL[reason]}`,
          text: `${RELAY_FAILURES[reason].summary}${where}${reply}`,
        }),
        reason,
        ...remote,
        ...remoteDsn,
      };
    },
  };
}
