import { Resolver } from 'node:dns/promises';
import { normalizeDomain } from '../shared/index.js';
import { RelayError } from './relay-error.js';

/** One MX record as `dns.resolveMx` returns it. */
export interface MxRecord {
  readonly exchange: string;
  readonly priority: number;
}

/** Our seam around `node:dns`: tests inject a function, production uses systemMxLookup. */
export type MxLookup = (domain: string) => Promise<readonly MxRecord[]>;

export interface RouteTarget {
  readonly host: string;
  readonly port: number;
}

export interface RemoteHost extends RouteTarget {
  /** Where the host came from: the static routing table, an MX record, or the implicit MX. */
  readonly source: 'static' | 'mx' | 'implicit';
}

export interface ResolveDestinationOptions {
  /**
   * Static routes by recipient domain, tried in order; they override DNS (private links between
   * operators, tests). Keys are compared after domain normalisation.
   */
  readonly routes?: Readonly<Record<string, readonly RouteTarget[]>>;
  /** MX lookup; default systemMxLookup(). */
  readonly lookupMx?: MxLookup;
  /** SMTP port of hosts found in DNS. Default 25 (RFC 5321 §4.5.4.2 relays use port 25). */
  readonly port?: number;
  /** Random source for shuffling equal priorities; default Math.random. */
  readonly random?: () => number;
}

export interface SystemMxLookupOptions {
  /** Per-query timeout. Default 5000 ms. */
  readonly timeoutMs?: number;
  /** Attempts per name server. Default 2. */
  readonly tries?: number;
  /** Name servers (`1.2.3.4`, `[::1]:5353`…); default the system's. */
  readonly servers?: readonly string[];
}

export function systemMxLookup(options: SystemMxLookupOptions = {}): MxLookup {
  const resolver = new Resolver({ timeout: options.timeoutMs ?? 5000, tries: options.tries ?? 2 });
  if (options.servers && options.servers.length > 0) resolver.setServers([...options.servers]);
  return (domain) => resolver.resolveMx(domain);
}

/** c-ares codes meaning "this name (or its MX) does not exist", not "we could not ask". */
const NO_SUCH_DOMAIN = new Set(['ENOTFOUND']);
const NO_MX = new Set(['ENODATA']);

function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Sorts by priority (lowest first) and shuffles ties, spreading load as RFC 5321 §5.1 asks. */
export function orderMx(records: readonly MxRecord[], random: () => number = Math.random): MxRecord[] {
  const keyed = records.map((r) => ({ r, tie: random() }));
  keyed.sort((a, b) => a.r.priority - b.r.priority || a.tie - b.tie);
  return keyed.map((k) => k.r);
}

/**
 * The hosts to try, in order, for mail to `domain`. A static route wins; otherwise the MX records,
 * or the domain itself when it has none (RFC 5321 §5.1 implicit MX). NXDOMAIN and a null MX
 * (RFC 7505) are permanent; SERVFAIL, timeouts and refusals are temporary.
 */
export async function resolveDestination(
  domain: string,
  options: ResolveDestinationOptions = {},
): Promise<RemoteHost[]> {
  const name = normalizeDomain(domain);
  if (name === undefined) throw new RelayError('domain_not_found', { host: domain });
  const route = routeFor(name, options.routes);
  if (route) return route.map((t) => ({ host: t.host, port: t.port, source: 'static' as const }));

  const port = options.port ?? 25;
  const lookup = options.lookupMx ?? systemMxLookup();
  let records: readonly MxRecord[];
  try {
    records = await lookup(name);
  } catch (err) {
    const code = errorCode(err);
    if (code !== undefined && NO_MX.has(code)) return [{ host: name, port, source: 'implicit' }];
    const reason = code !== undefined && NO_SUCH_DOMAIN.has(code) ? 'domain_not_found' : 'dns_unavailable';
    throw new RelayError(reason, { host: name }, { cause: err });
  }
  if (records.length === 0) return [{ host: name, port, source: 'implicit' }];
  const hosts = records.map((r) => ({ ...r, exchange: r.exchange.replace(/\.$/, '') }));
  if (hosts.some((r) => r.exchange === '')) throw new RelayError('null_mx', { host: name });
  return orderMx(hosts, options.random).map((r) => ({ host: r.exchange, port, source: 'mx' as const }));
}

function routeFor(
  name: string,
  routes: Readonly<Record<string, readonly RouteTarget[]>> | undefined,
): readonly RouteTarget[] | undefined {
  if (!routes) return undefined;
  for (const [key, targets] of Object.entries(routes)) {
    if (normalizeDomain(key) === name && targets.length > 0) return targets;
  }
  return undefined;
}
