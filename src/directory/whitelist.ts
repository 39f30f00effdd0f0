import type { ParsedWhitelist, RejectedWhitelistEntry, WhitelistEntry } from './whitelist-parser.js';
import { normalizeDomain } from '../shared/index.js';

/**
 * An immutable, indexed copy of the whitelist. One domain may have several operator DNs (an operator
 * with several MTAs) and one DN serves many domains, so both directions map to sets.
 */
export class Whitelist {
  readonly generatedAt: string;
  readonly loadedAt: Date;
  readonly source: string;
  readonly #dnsByDomain = new Map<string, Set<string>>();
  readonly #domainsByDn = new Map<string, Set<string>>();
  readonly size: number;
  /** Malformed entries of the file left out of the index (reported by metric, journal, status). */
  readonly rejected: readonly RejectedWhitelistEntry[];

  constructor(parsed: ParsedWhitelist, source: string, loadedAt: Date) {
    this.generatedAt = parsed.generatedAt;
    this.rejected = parsed.rejected;
    this.source = source;
    this.loadedAt = loadedAt;
    this.size = parsed.entries.length;
    for (const e of parsed.entries) this.#add(e);
  }

  #add(e: WhitelistEntry): void {
    const dns = this.#dnsByDomain.get(e.domain) ?? new Set<string>();
    dns.add(e.canonicalDn);
    this.#dnsByDomain.set(e.domain, dns);
    const domains = this.#domainsByDn.get(e.canonicalDn) ?? new Set<string>();
    domains.add(e.domain);
    this.#domainsByDn.set(e.canonicalDn, domains);
  }

  get domainCount(): number {
    return this.#dnsByDomain.size;
  }

  get operatorCount(): number {
    return this.#domainsByDn.size;
  }

  /** Domains served by the operator whose certificate has this canonical DN. */
  domainsOf(canonicalDn: string): ReadonlySet<string> {
    return this.#domainsByDn.get(canonicalDn) ?? new Set();
  }

  /** Canonical DNs allowed to send or receive for this domain. */
  dnsOf(domain: string): ReadonlySet<string> {
    const d = normalizeDomain(domain);
    return (d && this.#dnsByDomain.get(d)) || new Set();
  }

  isWhitelistedDn(canonicalDn: string): boolean {
    return this.#domainsByDn.has(canonicalDn);
  }

  /** True when this DN is registered for this domain. */
  allows(canonicalDn: string, domain: string): boolean {
    const d = normalizeDomain(domain);
    return d !== undefined && (this.#domainsByDn.get(canonicalDn)?.has(d) ?? false);
  }
}

/**
 * Holds the whitelist in service. Readers call `current()` for every decision; a refresh swaps the
 * reference in one assignment, so no reader ever sees a half-built index.
 */
export class WhitelistHolder {
  #current: Whitelist;
  constructor(initial: Whitelist) {
    this.#current = initial;
  }
  current(): Whitelist {
    return this.#current;
  }
  swap(next: Whitelist): Whitelist {
    const previous = this.#current;
    this.#current = next;
    return previous;
  }
}
