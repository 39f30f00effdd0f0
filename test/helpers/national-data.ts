import { readFileSync } from 'node:fs';
import path from 'node:path';
import forge from 'node-forge';
import yazl from 'yazl';
import { type RsaKey, generateRsaKey } from '../../src/pki/cert-builder.js';
import { type RevokedEntry, buildCrl } from '../../src/pki/crl-builder.js';
import { AUTHORITY_PROFILES } from '../../src/pki/dev-pki-profile.js';
import { renderWhitelistXml } from '../../src/pki/dev-whitelist.js';

/**
 * Files in the national formats, made for tests and the benchmark: whitelists, extractions (text and
 * ZIP) and CRLs signed by the development PKI's authorities (or by a key that is not theirs).
 */

/** The 31 columns of Extraction_Correspondance_MSSante, as the national file names them. */
export const EXTRACTION_HEADER = [
  'Type de BAL',
  'Adresse BAL',
  'Type Identifiant PP',
  'Identifiant PP',
  'Identification nationale PP',
  'Type identifiant structure',
  'Identification Structure',
  'Service de rattachement',
  "Civilité d'exercice",
  "Nom d'exercice",
  "Prénom d'exercice",
  'Catégorie profession',
  'Libellé de catégorie profession',
  'Code Profession',
  'Libellé Profession',
  'Code savoir-faire',
  'Libellé savoir-faire',
  'Dématérialisation',
  'Raison Sociale structure BAL',
  'Enseigne commerciale structure BAL',
  'L2COMPLEMENTLOCALISATION structure BAL',
  'L3COMPLEMENTDISTRIBUTION structure BAL',
  'L4NUMEROVOIE structure BAL',
  'L4COMPLEMENTNUMEROVOIE structure BAL',
  'NL4TYPEVOIE structure BAL',
  'L4LIBELLEVOIE structure BAL',
  'L5LIEUDITMENTION structure BAL',
  'L6LIGNEACHEMINEMENT structure BAL',
  'Code postal structure BAL',
  'Département structure BAL',
  'Pays structure BAL',
].join('|');

/** One extraction line: a person (PER, national id 8 + RPPS) or a service (ORG). */
export function extractionLine(address: string, n: number, type: 'PER' | 'ORG' = 'PER'): string {
  const rpps = String(10_000_000_000 + n);
  const structure = String(1_690_000_000 + (n % 5000));
  const person =
    type === 'PER'
      ? [
          '8',
          rpps,
          `8${rpps}`,
          'DR',
          `NOM${n}`,
          `Prénom${n}`,
          'C',
          'Civil',
          '10',
          'Médecin',
          'SM54',
          'Médecine générale',
        ]
      : ['', '', '', '', '', '', '', '', '', '', '', ''];
  return [
    type,
    address,
    ...person.slice(0, 3),
    '4',
    structure,
    'Cardiologie',
    ...person.slice(3),
    'true',
    `CENTRE HOSPITALIER ${n % 5000}`,
    '',
    '',
    '',
    '12',
    '',
    'R',
    'DE LA SANTE',
    '',
    '69000 LYON',
    '69000',
    '69',
    'FRANCE',
  ].join('|');
}

/** An extraction text with the header and `count` addresses `user<i>@<domain>` (i from `from`). */
export function extractionText(count: number, options: { domain?: string; from?: number } = {}): string {
  const domain = options.domain ?? 'ch-exemple.mssante.fr';
  const from = options.from ?? 0;
  const lines = [EXTRACTION_HEADER];
  for (let i = from; i < from + count; i++)
    lines.push(extractionLine(`user${i}@${domain}`, i, i % 10 === 0 ? 'ORG' : 'PER'));
  return `${lines.join('\n')}\n`;
}

/** A ZIP holding the given files (deflated), as the agency publishes the extraction. */
export function zipOf(files: Record<string, string | Buffer>): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const [name, content] of Object.entries(files))
    zip.addBuffer(Buffer.isBuffer(content) ? content : Buffer.from(content, 'utf8'), name);
  zip.end();
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    zip.outputStream.on('data', (c: Buffer) => chunks.push(c));
    zip.outputStream.once('end', () => resolve(Buffer.concat(chunks)));
    zip.outputStream.once('error', reject);
  });
}

/** A whitelist with `count` domains `d<i>.<suffix>`, each served by one of a few operator DNs. */
export function whitelistXml(
  count: number,
  options: { suffix?: string; generatedAt?: Date; extra?: Array<{ domain: string; dn: string }> } = {},
): string {
  const suffix = options.suffix ?? 'mssante.example';
  const at = options.generatedAt ?? new Date('2026-11-20T03:00:00Z');
  const entries = [
    ...(options.extra ?? []).map((e) => ({ domain: e.domain, operatorDn: e.dn })),
    ...Array.from({ length: count }, (_, i) => ({
      domain: `d${i}.${suffix}`,
      operatorDn: `CN=mx${i % 7}.op.example,OU=31800000000000${i % 7},O=Operateur ${i % 7},C=FR`,
    })),
  ];
  return renderWhitelistXml(
    at,
    entries.map((e) => ({
      ...e,
      description: `Organisation ${e.domain}`,
      responsibleContact: 'dsi@op.example',
      supportContact: 'support@op.example',
      updatedAt: at,
    })),
  );
}

function rsaKeyFromPem(pem: string): RsaKey {
  const privateKey = forge.pki.privateKeyFromPem(pem);
  const publicKey = forge.pki.setRsaPublicKey(privateKey.n, privateKey.e);
  const keyIdentifier = forge.pki
    .getPublicKeyFingerprint(publicKey, { type: 'RSAPublicKey', md: forge.md.sha1.create() })
    .getBytes();
  return { pem, privateKey, publicKey, keyIdentifier };
}

export interface CrlOptions {
  readonly thisUpdate?: Date;
  readonly nextUpdate?: Date;
  readonly crlNumber?: number;
  readonly revokedSerials?: readonly string[];
  /** Sign with a fresh key instead of the authority's (the name still says the authority). */
  readonly forged?: boolean;
}

/** A DER CRL of a development authority (`org`, `pp`, `root`, or `foreign-root`, which we do not trust). */
export async function devCrl(
  pkiDir: string,
  authority: 'org' | 'pp' | 'root' | 'foreign-root',
  options: CrlOptions = {},
): Promise<Buffer> {
  const key = options.forged
    ? await generateRsaKey()
    : rsaKeyFromPem(readFileSync(path.join(pkiDir, 'ca', `${authority}.key`), 'utf8'));
  const now = Date.now();
  const revoked: RevokedEntry[] = (options.revokedSerials ?? []).map((serial) => ({
    serial,
    revocationDate: new Date(now - 3_600_000),
    reason: 'keyCompromise',
  }));
  return buildCrl({
    issuer: { subject: AUTHORITY_PROFILES[authority].subject, key },
    thisUpdate: options.thisUpdate ?? new Date(now - 60_000),
    nextUpdate: options.nextUpdate ?? new Date(now + 7 * 86_400_000),
    crlNumber: options.crlNumber ?? 2,
    revoked,
  }).der;
}
