import { isIPv6 } from 'node:net';

/** Why a connection is turned away at once (a bounded metric label). */
export type ConnectionRefusal = 'max-connections' | 'max-per-source' | 'shutting-down';

export interface ConnectionLimits {
  /** Connections open at once on the listener(s) sharing this gate, in any state. */
  readonly maxConnections: number;
  /**
   * Connections from one source that have not yet proved who they are (before TLS with a trusted
   * certificate on MX, before login on submission and IMAP). Authenticated connections count only
   * against `maxConnections`, so that many users behind one NAT are not refused.
   */
  readonly maxPreauthPerSource: number;
}

/** An admitted connection: tell the gate when it authenticated, and when it closed. */
export interface ConnectionTicket {
  /** The connection proved its identity: it no longer counts against its source's limit. */
  authenticated(): void;
  /** The connection is closed (idempotent). */
  release(): void;
}

export type Admission =
  | { readonly ok: true; readonly ticket: ConnectionTicket }
  | { readonly ok: false; readonly reason: ConnectionRefusal };

/**
 * The source a limit is kept for: an IPv4 address, or the /64 of an IPv6 one (a host usually holds
 * a whole /64, so counting single IPv6 addresses would let one host open unlimited connections).
 */
export function sourceOf(address: string | undefined): string {
  if (address === undefined || address === '') return 'unknown';
  if (address.startsWith('::ffff:') && address.includes('.')) return address.slice(7);
  if (!isIPv6(address)) return address;
  const groups = expandIPv6(address);
  return `${groups.slice(0, 4).join(':')}::/64`;
}

function expandIPv6(address: string): string[] {
  const [head = '', tail] = address.split('::');
  const left = head === '' ? [] : head.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const missing = Math.max(0, 8 - left.length - right.length);
  return [...left, ...Array<string>(missing).fill('0'), ...right].map((g) => g.toLowerCase());
}

/**
 * Bounded, fair admission on a listener (issue #11): a total limit, and a limit per source on the
 * connections not yet authenticated, so that one address holding thousands of idle connections
 * never keeps another from being served. Pure bookkeeping, no I/O: the listener refuses the socket.
 */
export class ConnectionGate {
  readonly #limits: ConnectionLimits;
  readonly #preauthBySource = new Map<string, number>();
  #open = 0;
  #closing = false;

  constructor(limits: ConnectionLimits) {
    this.#limits = limits;
  }

  /** Connections open now. */
  get size(): number {
    return this.#open;
  }

  /** Sources with unauthenticated connections now (bounded by the connections themselves). */
  get sources(): number {
    return this.#preauthBySource.size;
  }

  /** From now on every connection is refused with `shutting-down`. */
  close(): void {
    this.#closing = true;
  }

  admit(address: string | undefined): Admission {
    if (this.#closing) return { ok: false, reason: 'shutting-down' };
    if (this.#open >= this.#limits.maxConnections) return { ok: false, reason: 'max-connections' };
    const source = sourceOf(address);
    const preauth = this.#preauthBySource.get(source) ?? 0;
    if (preauth >= this.#limits.maxPreauthPerSource) return { ok: false, reason: 'max-per-source' };
    this.#open++;
    this.#preauthBySource.set(source, preauth + 1);
    let counted = true;
    let open = true;
    const leaveSource = () => {
      if (!counted) return;
      counted = false;
      const n = (this.#preauthBySource.get(source) ?? 1) - 1;
      if (n <= 0) this.#preauthBySource.delete(source);
      else this.#preauthBySource.set(source, n);
    };
    return {
      ok: true,
      ticket: {
        authenticated: leaveSource,
        release: () => {
          if (!open) return;
          open = false;
          this.#open--;
          leaveSource();
        },
      },
    };
  }
}
