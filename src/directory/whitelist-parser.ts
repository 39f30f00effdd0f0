import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { GatewayError } from '../errors/index.js';
import { normalizeDn } from '../pki/index.js';
import { normalizeDomain } from '../shared/index.js';

/** One `Domaine` element of the national whitelist (MSSANTE.md "The trust space"). */
export interface WhitelistEntry {
  /** Mail domain, lower-case ASCII (IDNA). */
  readonly domain: string;
  /** DN exactly as published. */
  readonly dn: string;
  /** DN in canonical form (see pki/dn.ts). */
  readonly canonicalDn: string;
  readonly description: string;
  readonly updatedAt?: string;
}

export interface ParsedWhitelist {
  readonly generatedAt: string;
  readonly entries: readonly WhitelistEntry[];
}

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number') return String(v);
  return undefined;
}

/**
 * Parses `listeblanchemssante.xml`. Refuses the whole file on any structural problem, naming the
 * entry and the field, so that a broken download never replaces the last good copy.
 */
export function parseWhitelistXml(xml: string | Buffer): ParsedWhitelist {
  const source = typeof xml === 'string' ? xml : xml.toString('utf8');
  const valid = XMLValidator.validate(source);
  if (valid !== true) {
    throw new GatewayError(
      'WHITELIST_INVALID',
      `whitelist is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`,
    );
  }
  const parser = new XMLParser({
    removeNSPrefix: true,
    ignoreAttributes: true,
    parseTagValue: false,
    isArray: (name) => name === 'Domaine',
    processEntities: true,
  });
  const doc = parser.parse(source) as Record<string, unknown>;
  const root = doc.ListeBlancheMSSante as Record<string, unknown> | undefined;
  if (!root || typeof root !== 'object') {
    throw new GatewayError('WHITELIST_INVALID', 'root element ListeBlancheMSSante is missing');
  }
  const generatedAt = text(root.DateDeGeneration);
  if (!generatedAt || Number.isNaN(Date.parse(generatedAt))) {
    throw new GatewayError('WHITELIST_INVALID', 'DateDeGeneration is missing or not an ISO-8601 date');
  }
  const list = root.ListeDomaines as Record<string, unknown> | undefined;
  const domaines = (list && typeof list === 'object' ? list.Domaine : undefined) as unknown[] | undefined;
  if (!Array.isArray(domaines) || domaines.length === 0) {
    throw new GatewayError('WHITELIST_INVALID', 'ListeDomaines holds no Domaine entry');
  }
  const entries = domaines.map((d, i): WhitelistEntry => {
    const at = `Domaine #${i + 1}`;
    if (!d || typeof d !== 'object') throw new GatewayError('WHITELIST_INVALID', `${at} is empty`);
    const rec = d as Record<string, unknown>;
    const nom = text(rec.Nom);
    const domain = nom === undefined ? undefined : normalizeDomain(nom);
    if (!domain)
      throw new GatewayError(
        'WHITELIST_INVALID',
        `${at}: Nom ${JSON.stringify(nom ?? null)} is not a domain`,
      );
    const dn = text(rec.DNCertificatOperateur);
    if (!dn)
      throw new GatewayError('WHITELIST_INVALID', `${at} (${domain}): DNCertificatOperateur is missing`);
    let canonical: string;
    try {
      canonical = normalizeDn(dn);
    } catch (err) {
      throw new GatewayError(
        'WHITELIST_INVALID',
        `${at} (${domain}): DNCertificatOperateur is not a DN: ${(err as Error).message}`,
      );
    }
    const updatedAt = text(rec.DateMAJ);
    return {
      domain,
      dn,
      canonicalDn: canonical,
      description: text(rec.Description) ?? '',
      ...(updatedAt ? { updatedAt } : {}),
    };
  });
  return { generatedAt, entries };
}
