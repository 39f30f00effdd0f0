import type { X509Certificate } from 'node:crypto';
import type { Logger } from '../observability/index.js';
import type { TlsProfileOptions, TrustMaterial } from '../pki/index.js';
import { type Clock, systemClock } from '../shared/index.js';
import { connectTrustedRemote, type TrustedRemoteSession } from './connect-remote.js';
import { type MxLookup, type RouteTarget, resolveDestination } from './mx-resolver.js';
import { anchoredIn, chainNotAfter, peerChain } from './peer-chain.js';
import { peerListsCurrentUntil, peerRevocation } from './peer-revocation.js';
import { RelayError, TRUST_FAILURES } from './relay-error.js';
import type { RemoteWhitelistView } from './remote-verdict.js';
import {
  type OutboundTransaction,
  type RecipientReply,
  type SessionCapabilities,
  capabilitiesOf,
  sendTransaction,
} from './smtp-transaction.js';

export interface RelayTransportOptions {
  /** Read at each connection, so a reload applies to the next one. */
  readonly trust: () => TrustMaterial;
  readonly profile: TlsProfileOptions;
  /** The current whitelist (the mirror swaps it). */
  readonly whitelist: () => RemoteWhitelistView;
  readonly heloName: string;
  readonly routes?: Readonly<Record<string, readonly RouteTarget[]>>;
  /** SMTP port of hosts found in DNS. */
  readonly port: number;
  readonly lookupMx?: MxLookup;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  /** Open connections to one recipient domain at most. */
  readonly maxConnectionsPerDestination: number;
  readonly maxMessagesPerConnection: number;
  /** An idle connection is kept this long for the next message to the same domain. */
  readonly idleMs: number;
  /**
   * A connection gets no new message once it has been open this long (Postfix's
   * smtp_connection_reuse_time_limit): it is closed with QUIT when its transaction ends or, idle,
   * when the time comes.
   */
  readonly maxConnectionAgeMs: number;
  /** Time source for connection ages (tests move it). Default the system clock. */
  readonly clock?: Clock;
  /** Where a pooled connection closed for trust (revoked, DN delisted) is reported. */
  readonly logger?: Logger;
}

/** Counters since start, for benchmarks and tests: how connections were used. */
export interface RelayStats {
  /** TLS connections opened (judged and greeted). */
  readonly opened: number;
  /** Transactions begun, and those over a connection that carried one before. */
  readonly transactions: number;
  readonly reused: number;
  /** Transactions whose envelope went in one write (the remote offered PIPELINING). */
  readonly pipelined: number;
  /** Most connections open at once to one domain. */
  readonly peakPerDestination: ReadonlyMap<string, number>;
}

/** What one relay attempt produced: a reply per recipient, or the failure before any. */
export interface RelayAttempt {
  readonly replies: readonly RecipientReply[];
  readonly remote?: { readonly host: string; readonly dn: string };
  /** The remote advertised DSN: it reports success itself (RFC 3461 §5.2.2). */
  readonly remoteDsn?: boolean;
  /** Why no recipient got a reply from the remote (connect, TLS, trust, lookup, lost connection). */
  readonly failure?: RelayError;
}

interface PooledSession {
  readonly session: TrustedRemoteSession;
  readonly caps: SessionCapabilities;
  readonly host: string;
  /** When the connection was opened (clock ms), for maxConnectionAgeMs. */
  readonly openedAt: number;
  /** The remote's certificate (with its chain, from the socket), checked again before each reuse. */
  readonly peer?: X509Certificate;
  /** That certificate and its issuers, leaf first (empty without a certificate). */
  readonly chain: readonly X509Certificate[];
  /** When the first certificate of the chain (leaf or an authority) ends its validity. */
  readonly peerNotAfter: number;
  /** The trust material the chain was last found valid under (by OpenSSL, then by peerRevocation). */
  judgedUnder: TrustMaterial;
  /** Until when the revocation lists of `judgedUnder` that answer for the chain are current. */
  listsUntil: number;
  /** Transactions begun on this connection: from the second on, each starts with RSET. */
  messages: number;
  busy: boolean;
  idleTimer?: NodeJS.Timeout;
}

interface DomainPool {
  readonly sessions: Set<PooledSession>;
  connecting: number;
  readonly waiters: Array<() => void>;
}

/** Why a pooled connection is given no more messages. */
type Retirement =
  | 'broken'
  | 'age_limit'
  | 'dn_not_whitelisted_for_domain'
  | 'authority_untrusted'
  | 'cert_revoked'
  | 'cert_expired'
  | 'crl_expired'
  | 'revocation_unknown';

/** Retirements that say the remote is no longer trusted as it was when the connection was judged. */
const TRUST_RETIREMENTS: ReadonlySet<Retirement> = new Set([
  'dn_not_whitelisted_for_domain',
  'authority_untrusted',
  'cert_revoked',
  'cert_expired',
  'crl_expired',
  'revocation_unknown',
]);

/**
 * Whether a connection may carry another transaction: open both ways, and nothing read that no
 * command asked for (a remote closing an idle connection says `421` first; a TLS renegotiation
 * request, refused, fails the reader).
 */
function usable(p: PooledSession): boolean {
  const { socket, reader } = p.session;
  return (
    !socket.destroyed && !socket.readableEnded && socket.writable && !reader.failure && !reader.unsolicited
  );
}

/**
 * Ends a connection: QUIT without waiting for the answer (RFC 5321 §4.1.1.10) when it is in step,
 * else a plain close (a QUIT after half a message would only become part of the message).
 */
function close(p: PooledSession): void {
  clearTimeout(p.idleTimer);
  const s = p.session.socket;
  s.on('error', () => {});
  if (s.destroyed) return;
  if (!usable(p)) {
    s.destroy();
    return;
  }
  s.end('QUIT\r\n');
  s.setTimeout(1000, () => s.destroy());
}

/**
 * Sends mail to other operators (ARCHITECTURE.md §5, outbound relay) over connections judged by
 * connectTrustedRemote for the recipient's domain. Connections are pooled per domain: at most
 * `maxConnectionsPerDestination` open, reused for up to `maxMessagesPerConnection` messages and
 * `maxConnectionAgeMs` (each transaction after the first starts with RSET, pipelined with the
 * envelope when the remote offers PIPELINING), closed after `idleMs` without use. A connection is
 * judged for one domain and used for that domain only: a server whitelisted for one domain proves
 * nothing for another. Before each reuse, what the handshake proved is checked again against what
 * is in service now: the DN against the whitelist, the certificate chain against the authorities
 * and the CRLs (and the end of validity of each of its certificates, and of those lists); a
 * connection that no longer passes is closed and the message goes over a new one, judged afresh
 * (so a revoked remote gets the usual refusal, never the message).
 *
 * A reused connection that fails before the final "." of DATA (the remote closed it while idle,
 * refused a renegotiation, timed out) cannot have delivered anything: the message is sent again at
 * once over a new connection. After the final ".", the remote may have the message whatever happens
 * to the connection: the attempt fails temporarily and the queue sends it again later, so the
 * remote may get two copies (at-least-once, RFC 5321 §6.1; the window is one round trip, from the
 * final "." to its reply).
 */
export class RelayTransport {
  readonly #o: RelayTransportOptions;
  readonly #clock: Clock;
  readonly #pools = new Map<string, DomainPool>();
  readonly #stats = { opened: 0, transactions: 0, reused: 0, pipelined: 0 };
  readonly #peaks = new Map<string, number>();
  #closed = false;

  constructor(options: RelayTransportOptions) {
    this.#o = options;
    this.#clock = options.clock ?? systemClock;
  }

  /** Open connections by domain, for the per-destination gauge. */
  connections(): Map<string, number> {
    const out = new Map<string, number>();
    for (const [domain, pool] of this.#pools) if (pool.sessions.size > 0) out.set(domain, pool.sessions.size);
    return out;
  }

  stats(): RelayStats {
    return { ...this.#stats, peakPerDestination: new Map(this.#peaks) };
  }

  async send(domain: string, tx: OutboundTransaction): Promise<RelayAttempt> {
    for (let attempt = 1; ; attempt += 1) {
      let pooled: PooledSession;
      try {
        // The second attempt never takes an idle connection: they may all be stale alike.
        pooled = await this.#acquire(domain, attempt > 1);
      } catch (err) {
        return { replies: [], failure: asRelayError(err) };
      }
      const reused = pooled.messages > 0;
      pooled.messages += 1;
      this.#stats.transactions += 1;
      if (reused) this.#stats.reused += 1;
      if (pooled.caps.pipelining) this.#stats.pipelined += 1;
      const remote = { host: pooled.host, dn: pooled.session.dn };
      const progress = { finalDot: false };
      try {
        const { replies, reusable } = await sendTransaction(
          pooled.session,
          pooled.caps,
          tx,
          { timeoutMs: this.#o.commandTimeoutMs, reset: reused },
          progress,
        );
        this.#release(domain, pooled, reusable);
        return { replies, remote, remoteDsn: pooled.caps.dsn };
      } catch (err) {
        this.#release(domain, pooled, false);
        const failure = asRelayError(err);
        // Only a transport failure of a reused connection is retried here, and only before the
        // final dot; a message that could not be read is no fault of the connection.
        if (reused && attempt === 1 && !progress.finalDot && err instanceof RelayError) continue;
        return { replies: [], remote, remoteDsn: pooled.caps.dsn, failure };
      }
    }
  }

  /** Closes every pooled connection; later sends fail with connect_failed. */
  close(): void {
    this.#closed = true;
    for (const pool of this.#pools.values()) {
      for (const p of pool.sessions) close(p);
      pool.sessions.clear();
      for (const w of pool.waiters.splice(0)) w();
    }
  }

  #pool(domain: string): DomainPool {
    let pool = this.#pools.get(domain);
    if (!pool) {
      pool = { sessions: new Set(), connecting: 0, waiters: [] };
      this.#pools.set(domain, pool);
    }
    return pool;
  }

  /** An idle connection (unless `fresh`), else a new one when below the limit, else waits. */
  async #acquire(domain: string, fresh: boolean): Promise<PooledSession> {
    const pool = this.#pool(domain);
    for (;;) {
      if (this.#closed) throw new RelayError('connect_failed', { reply: 'relay stopping' });
      let spare: PooledSession | undefined;
      const now = this.#clock.now().getTime();
      const registered = this.#o.whitelist().dnsOf(domain);
      const material = this.#o.trust();
      for (const p of pool.sessions) {
        if (p.busy) continue;
        const unfit = this.#unfit(p, now, registered, material);
        if (unfit) {
          pool.sessions.delete(p);
          this.#retire(domain, p, unfit);
          continue;
        }
        if (fresh) {
          spare ??= p;
          continue;
        }
        clearTimeout(p.idleTimer);
        p.busy = true;
        return p;
      }
      // A fresh connection at the limit takes the place of an idle one.
      if (spare && pool.sessions.size + pool.connecting >= this.#o.maxConnectionsPerDestination) {
        pool.sessions.delete(spare);
        close(spare);
      }
      if (pool.sessions.size + pool.connecting < this.#o.maxConnectionsPerDestination) {
        pool.connecting += 1;
        try {
          const p = await this.#open(domain);
          pool.sessions.add(p);
          this.#stats.opened += 1;
          if (pool.sessions.size > (this.#peaks.get(domain) ?? 0))
            this.#peaks.set(domain, pool.sessions.size);
          // An idle connection that fails (closed by the remote, a refused renegotiation) leaves
          // the pool at once and frees its slot.
          const drop = (): void => {
            if (p.busy || !pool.sessions.delete(p)) return;
            close(p);
            pool.waiters.shift()?.();
          };
          p.session.socket.once('error', drop).once('end', drop).once('close', drop);
          return p;
        } finally {
          pool.connecting -= 1;
          // A failed connect frees a slot: let a waiter try (it will likely fail the same way).
          pool.waiters.shift()?.();
        }
      }
      await new Promise<void>((resolve) => pool.waiters.push(resolve));
    }
  }

  /**
   * Why a pooled connection must not carry the next message, if it must not: broken, too old, or
   * no longer passing what its handshake proved. A whitelist or trust material refreshed meanwhile
   * applies to pooled connections too: a DN no longer registered for the domain, a chain whose
   * root authority is no longer configured, or one revoked since, gets nothing more over the
   * connection judged before; nor does a chain with a certificate past its end of validity, or
   * whose revocation lists have passed their nextUpdate.
   */
  #unfit(
    p: PooledSession,
    now: number,
    registered: ReadonlySet<string>,
    material: TrustMaterial,
  ): Retirement | undefined {
    if (!usable(p)) return 'broken';
    if (!registered.has(p.session.dn)) return 'dn_not_whitelisted_for_domain';
    if (now >= p.peerNotAfter) return 'cert_expired';
    if (now - p.openedAt >= this.#o.maxConnectionAgeMs) return 'age_limit';
    if (material !== p.judgedUnder) {
      if (!p.peer) return 'revocation_unknown';
      if (!anchoredIn(p.chain, material.authorities)) return 'authority_untrusted';
      const status = peerRevocation(material, p.peer);
      if (status === 'revoked') return 'cert_revoked';
      if (status === 'unknown') return 'revocation_unknown';
      p.judgedUnder = material;
      p.listsUntil = peerListsCurrentUntil(material, p.peer);
    }
    // OpenSSL would refuse the handshake now (CRL_HAS_EXPIRED): no list vouches for the chain.
    if (now >= p.listsUntil) return 'crl_expired';
    return undefined;
  }

  /** Closes a connection taken out of its pool, saying why when trust is the reason. */
  #retire(domain: string, p: PooledSession, why: Retirement): void {
    if (TRUST_RETIREMENTS.has(why))
      this.#o.logger?.warn(
        {
          event: 'relay.connection.retired',
          destination: domain,
          remoteHost: p.session.socket.remoteAddress ?? p.host,
          remoteDn: p.session.dn,
          reason: why,
          messages: p.messages,
        },
        'pooled relay connection closed: the remote no longer passes the trust checks',
      );
    close(p);
  }

  #release(domain: string, p: PooledSession, reusable: boolean): void {
    const pool = this.#pool(domain);
    p.busy = false;
    const left = p.openedAt + this.#o.maxConnectionAgeMs - this.#clock.now().getTime();
    if (
      !reusable ||
      this.#closed ||
      p.messages >= this.#o.maxMessagesPerConnection ||
      left <= 0 ||
      !usable(p)
    ) {
      pool.sessions.delete(p);
      if (reusable) close(p);
      else {
        p.session.socket.on('error', () => {});
        p.session.socket.destroy();
        clearTimeout(p.idleTimer);
      }
    } else {
      // Idle, it goes at the idle limit or at the age limit, whichever comes first.
      p.idleTimer = setTimeout(
        () => {
          if (p.busy) return;
          pool.sessions.delete(p);
          close(p);
          pool.waiters.shift()?.();
        },
        Math.min(this.#o.idleMs, left),
      );
      p.idleTimer.unref();
    }
    pool.waiters.shift()?.();
  }

  /**
   * Tries the domain's hosts in order (static route, else MX). A failure that concerns the domain
   * (not whitelisted, no such domain) stops at once; otherwise the next host is tried. The error
   * reported is the first trust refusal met, else the last failure.
   */
  async #open(domain: string): Promise<PooledSession> {
    const o = this.#o;
    const hosts = await resolveDestination(domain, {
      ...(o.routes ? { routes: o.routes } : {}),
      port: o.port,
      ...(o.lookupMx ? { lookupMx: o.lookupMx } : {}),
    });
    let trustRefusal: RelayError | undefined;
    let last: RelayError | undefined;
    for (const h of hosts) {
      const trust = o.trust();
      try {
        const session = await connectTrustedRemote({
          host: h.host,
          port: h.port,
          heloName: o.heloName,
          trust,
          profile: o.profile,
          timeoutMs: o.connectTimeoutMs,
          whitelist: o.whitelist(),
          recipientDomain: domain,
        });
        session.socket.on('error', () => {});
        const { peer } = session;
        const chain = peer ? peerChain(peer) : [];
        return {
          session,
          caps: capabilitiesOf(session.ehlo),
          host: h.host,
          openedAt: this.#clock.now().getTime(),
          ...(peer ? { peer } : {}),
          chain,
          peerNotAfter: peer ? chainNotAfter(chain) : Number.POSITIVE_INFINITY,
          judgedUnder: trust,
          listsUntil: peer ? peerListsCurrentUntil(trust, peer) : Number.POSITIVE_INFINITY,
          messages: 0,
          busy: true,
        };
      } catch (err) {
        const e = asRelayError(err);
        if (!e.hostScoped) throw e;
        if (TRUST_FAILURES.has(e.reason)) trustRefusal ??= e;
        last = e;
      }
    }
    throw trustRefusal ?? last ?? new RelayError('domain_not_found', { host: domain });
  }
}

function asRelayError(err: unknown): RelayError {
  return err instanceof RelayError ? err : new RelayError('protocol_error', {}, { cause: err });
}
