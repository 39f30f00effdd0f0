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

/** A `Domaine` entry left out because it is malformed: where it is and what is wrong with it. */
export interface RejectedWhitelistEntry {
  /** 1-based position among the `Domaine` elements. */
  readonly position: number;
  /** Its domain, when `Nom` could be read. */
  readonly domain?: string;
  readonly problem: string;
}

export interface ParsedWhitelist {
  readonly generatedAt: string;
  readonly entries: readonly WhitelistEntry[];
  /** Malformed entries left out (their share stayed within the allowed one). */
  readonly rejected: readonly RejectedWhitelistEntry[];
}

/** At most this many problems are quoted in a refusal message (the journal lists them all). */
const QUOTED_PROBLEMS = 5;

function text(v: unknown): string | undefined {
  if (typeof v === 'string') return v.trim();
  if (typeof v === 'number') return String(v);
  return undefined;
}

/** The national schema's elements: what each may contain. Anything else is refused. */
const ROOT_CHILDREN = new Set(['DateDeGeneration', 'ListeDomaines']);
const DOMAINE_CHILDREN = new Set([
  'Nom',
  'Description',
  'DNCertificatOperateur',
  'ResponsableContact',
  'SupportContact',
  'DateMAJ',
]);
/** Attributes allowed (on the root only): namespace declarations and the schema location. */
const ROOT_ATTRIBUTE = /^@_(xmlns(:[A-Za-z_][\w.-]*)?|schemaLocation)$/;

function invalid(message: string): GatewayError {
  return new GatewayError('WHITELIST_INVALID', message);
}

/** Refuses keys outside `allowed` (attributes included) in one parsed element. */
function onlyChildren(
  element: Record<string, unknown>,
  where: string,
  allowed: ReadonlySet<string>,
  root = false,
) {
  for (const key of Object.keys(element)) {
    if (key.startsWith('@_')) {
      if (root && ROOT_ATTRIBUTE.test(key)) continue;
      throw invalid(`${where} carries attribute ${key.slice(2)}, which the national schema does not define`);
    }
    if (!allowed.has(key))
      throw invalid(`${where} holds element ${key}, which the national schema does not define`);
  }
}

/**
 * Parses `listeblanchemssante.xml`. Refuses the whole file on any structural problem of the document,
 * so that a broken download never replaces the last good copy. A malformed `Domaine` entry (bad
 * `Nom`, missing or unreadable DN, element or attribute outside the schema) is left out and reported
 * with its position and field; the file is refused only when the share of such entries is above
 * `maxInvalidShare` (directory.whitelist.maxInvalidShare; 0 here: any bad entry refuses), so that one
 * typo at the agency does not freeze every later refresh, nor keep newly listed operators out. Only the
 * national schema is accepted: no DOCTYPE (so no entity definitions, no entity expansion, no
 * external reference), no processing instruction but the XML declaration, no element or attribute
 * the schema does not define, fields as text only.
 */
export function parseWhitelistXml(xml: string | Buffer, maxInvalidShare = 0): ParsedWhitelist {
  const source = typeof xml === 'string' ? xml : xml.toString('utf8');
  // Before any parser sees it: a DTD is how entity bombs and external entities arrive.
  if (/<!DOCTYPE/i.test(source))
    throw invalid('whitelist carries a DOCTYPE (DTD), which the national schema excludes');
  if (/<!ENTITY/i.test(source))
    throw invalid('whitelist defines an entity, which the national schema excludes');
  if (/<\?(?!xml[\s?])/i.test(source.replace(/^\uFEFF/, '').slice(1)) || /<\?xml-stylesheet/i.test(source)) {
    throw invalid('whitelist carries a processing instruction, which the national schema excludes');
  }
  const valid = XMLValidator.validate(source);
  if (valid !== true) {
    throw new GatewayError(
      'WHITELIST_INVALID',
      `whitelist is not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`,
    );
  }
  const parser = new XMLParser({
    removeNSPrefix: true,
    ignoreAttributes: false,
    parseTagValue: false,
    isArray: (name) => name === 'Domaine',
    // The five predefined entities and character references only: there is no DTD to define more.
    processEntities: true,
  });
  const doc = parser.parse(source) as Record<string, unknown>;
  const root = doc.ListeBlancheMSSante as Record<string, unknown> | undefined;
  if (!root || typeof root !== 'object') {
    throw new GatewayError('WHITELIST_INVALID', 'root element ListeBlancheMSSante is missing');
  }
  const others = Object.keys(doc).filter((k) => k !== 'ListeBlancheMSSante' && k !== '?xml');
  if (others.length > 0) throw invalid(`whitelist has content besides ListeBlancheMSSante: ${others[0]}`);
  onlyChildren(root, 'ListeBlancheMSSante', ROOT_CHILDREN, true);
  const generatedAt = text(root.DateDeGeneration);
  if (!generatedAt || Number.isNaN(Date.parse(generatedAt))) {
    throw new GatewayError('WHITELIST_INVALID', 'DateDeGeneration is missing or not an ISO-8601 date');
  }
  const list = root.ListeDomaines as Record<string, unknown> | undefined;
  if (list && typeof list === 'object') onlyChildren(list, 'ListeDomaines', new Set(['Domaine']));
  const domaines = (list && typeof list === 'object' ? list.Domaine : undefined) as unknown[] | undefined;
  if (!Array.isArray(domaines) || domaines.length === 0) {
    throw new GatewayError('WHITELIST_INVALID', 'ListeDomaines holds no Domaine entry');
  }
  const entries: WhitelistEntry[] = [];
  const rejected: RejectedWhitelistEntry[] = [];
  domaines.forEach((d, i) => {
    const entry = parseEntry(d, i + 1);
    if ('problem' in entry) rejected.push(entry);
    else entries.push(entry);
  });
  if (rejected.length > 0 && (entries.length === 0 || rejected.length / domaines.length > maxInvalidShare)) {
    const quoted = rejected.slice(0, QUOTED_PROBLEMS).map((r) => r.problem);
    const more = rejected.length > QUOTED_PROBLEMS ? `; and ${rejected.length - QUOTED_PROBLEMS} more` : '';
    throw invalid(
      `${quoted.join('; ')}${more} (${rejected.length} of ${domaines.length} Domaine entries malformed, over directory.whitelist.maxInvalidShare ${maxInvalidShare})`,
    );
  }
  return { generatedAt, entries, rejected };
}

/** One `Domaine` element: the entry, or what is wrong with it. */
function parseEntry(d: unknown, position: number): WhitelistEntry | RejectedWhitelistEntry {
  const at = `Domaine #${position}`;
  const bad = (problem: string, domain?: string): RejectedWhitelistEntry => ({
    position,
    ...(domain === undefined ? {} : { domain }),
    problem,
  });
  if (!d || typeof d !== 'object') return bad(`${at} is empty`);
  const rec = d as Record<string, unknown>;
  try {
    onlyChildren(rec, at, DOMAINE_CHILDREN);
  } catch (err) {
    return bad((err as Error).message);
  }
  for (const [field, value] of Object.entries(rec)) {
    if (typeof value !== 'string' && typeof value !== 'number')
      return bad(`${at}: ${field} must be text, as the national schema defines it`);
  }
  const nom = text(rec.Nom);
  const domain = nom === undefined ? undefined : normalizeDomain(nom);
  if (!domain) return bad(`${at}: Nom ${JSON.stringify(nom ?? null)} is not a domain`);
  const dn = text(rec.DNCertificatOperateur);
  if (!dn) return bad(`${at} (${domain}): DNCertificatOperateur is missing`, domain);
  let canonical: string;
  try {
    canonical = normalizeDn(dn);
  } catch (err) {
    return bad(`${at} (${domain}): DNCertificatOperateur is not a DN: ${(err as Error).message}`, domain);
  }
  const updatedAt = text(rec.DateMAJ);
  return {
    domain,
    dn,
    canonicalDn: canonical,
    description: text(rec.Description) ?? '',
    ...(updatedAt ? { updatedAt } : {}),
  };
}
