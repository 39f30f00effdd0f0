import type net from 'node:net';
import type { Clock } from '../shared/index.js';
import type { AuditJournal, Logger } from '../observability/index.js';
import type { ImapObserver } from './imap-observer.js';
import { untaggedLine } from './responses.js';
import type { StoreSession } from './store-login.js';
import { StorePipe } from './store-pipe.js';

/**
 * The logged-in part of a connection (ARCHITECTURE.md §5 "IMAP"): the client socket joined to the
 * store session, and its end recorded — `imap.session.closed` with bytes each way and duration
 * (MSSANTE.md "Traceability": never content).
 */
export interface ProxyContext {
  readonly idleTimeoutMs: number;
  readonly maxSessionMs: number;
  readonly clock: Clock;
  readonly journal: AuditJournal;
  readonly observer: ImapObserver;
  readonly log: Logger;
  /** Remote address and listener, for the journal. */
  readonly connection: Readonly<Record<string, unknown>>;
}

export interface ProxiedSession {
  readonly pipe: StorePipe;
  /** Resolves once both sockets are closed and the end is recorded. */
  readonly finished: Promise<void>;
}

export function startProxy(
  ctx: ProxyContext,
  client: net.Socket,
  clientLeftover: Buffer,
  store: StoreSession,
  bal: string,
): ProxiedSession {
  const since = ctx.clock.now().getTime();
  const pipe = new StorePipe(client, store.socket, {
    clientLeftover,
    storeLeftover: store.leftover,
    idleTimeoutMs: ctx.idleTimeoutMs,
    // RFC 9051 §5.4: an autologout is announced with BYE.
    idleFarewell: untaggedLine('BYE', 'Autologout; idle for too long'),
    maxSessionMs: ctx.maxSessionMs,
    // The client logs in again: rights and credentials are checked anew.
    sessionFarewell: untaggedLine('BYE', 'Session time limit reached; please log in again'),
  });
  const finished = pipe.done.then((r) => {
    const seconds = (ctx.clock.now().getTime() - since) / 1000;
    if (r.end === 'idle-timeout') ctx.observer.protocolError('idle-timeout');
    ctx.observer.sessionClosed(r.bytesFromClient, r.bytesToClient, seconds);
    const fields = {
      event: 'imap.session.closed',
      bal,
      ...ctx.connection,
      end: r.end,
      bytesFromClient: r.bytesFromClient,
      bytesToClient: r.bytesToClient,
      durationMs: Math.round(seconds * 1000),
    };
    ctx.journal.record(fields);
    ctx.log.info(fields, 'session closed');
  });
  return { pipe, finished };
}
