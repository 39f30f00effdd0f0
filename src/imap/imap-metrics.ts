import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { loginOutcomeLabel } from '../errors/index.js';
import type { Metrics } from '../observability/index.js';
import type { ImapObserver } from './imap-observer.js';

/**
 * The IMAP front end's metrics, bound to its observer interface. Labels are bounded: listener names,
 * mechanism names, error codes and fixed kinds.
 */
export function imapObserver(registry: Registry, metrics: Metrics): ImapObserver {
  const registers = [registry];
  const connections = new Counter({
    name: 'mssgw_imap_connections_total',
    help: 'IMAP connections accepted, by listener (starttls, implicit)',
    labelNames: ['listener'] as const,
    registers,
  });
  const active = new Gauge({
    name: 'mssgw_imap_connections_active',
    help: 'IMAP connections open now, by listener',
    labelNames: ['listener'] as const,
    registers,
  });
  const refused = new Counter({
    name: 'mssgw_imap_connections_refused_total',
    help: 'IMAP connections closed at once, by listener and reason',
    labelNames: ['listener', 'reason'] as const,
    registers,
  });
  const logins = new Counter({
    name: 'mssgw_imap_logins_total',
    help: 'IMAP logins by mechanism and outcome (ok or the refusal, as in mssgw_auth_attempts_total)',
    labelNames: ['mechanism', 'outcome'] as const,
    registers,
  });
  const loginDuration = new Histogram({
    name: 'mssgw_imap_login_duration_seconds',
    help: 'From the login command to the store accepting the master login',
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const protocolErrors = new Counter({
    name: 'mssgw_imap_protocol_errors_total',
    help: 'Malformed or over-limit client input and timeouts, by kind',
    labelNames: ['kind'] as const,
    registers,
  });
  const bytes = new Counter({
    name: 'mssgw_imap_proxied_bytes_total',
    help: 'Bytes piped between clients and the store, by direction (from_client, to_client)',
    labelNames: ['direction'] as const,
    registers,
  });
  const sessionDuration = new Histogram({
    name: 'mssgw_imap_session_duration_seconds',
    help: 'Duration of piped IMAP sessions',
    buckets: [1, 10, 60, 300, 900, 1800, 3600, 14400],
    registers,
  });
  return {
    connectionOpened: (listener) => {
      connections.inc({ listener });
      active.inc({ listener });
    },
    connectionClosed: (listener) => active.dec({ listener }),
    connectionRefused: (listener, reason) => refused.inc({ listener, reason }),
    tlsHandshake: (listener, outcome, detail) =>
      metrics.tlsHandshakes.inc({ listener: `imap-${listener}`, outcome, reason: detail }),
    login: (mechanism, outcome, seconds) => {
      logins.inc({ mechanism, outcome: loginOutcomeLabel(outcome) });
      if (outcome === 'ok') loginDuration.observe(seconds);
    },
    protocolError: (kind) => protocolErrors.inc({ kind }),
    sessionClosed: (fromClient, toClient, seconds) => {
      bytes.inc({ direction: 'from_client' }, fromClient);
      bytes.inc({ direction: 'to_client' }, toClient);
      sessionDuration.observe(seconds);
    },
  };
}
