import { createHash, randomBytes } from 'node:crypto';
import { access, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { ExtendedKeyUsage, IssuedCertificate, RsaKey } from './cert-builder.js';
import { formatDn, generateRsaKey, issueCertificate } from './cert-builder.js';
import { buildCrl } from './crl-builder.js';
import type { DevPkiAuthorityName, DevPkiLeafName } from './dev-pki-profile.js';
import {
  AUTHORITY_PROFILES,
  DEV_PKI_AUTHORITIES,
  DEV_PKI_LEAVES,
  DEV_WHITELIST,
  LEAF_PROFILES,
} from './dev-pki-profile.js';
import { renderWhitelistXml } from './dev-whitelist.js';
import { withDirLock } from './dir-lock.js';

/**
 * The development PKI generator (ARCHITECTURE.md §8): writes certs-dev/ so that the gateway and the
 * tests run with real TLS, real chains, real CRLs and a whitelist in the national format, without
 * any production material. Nothing it writes may ever be trusted in production.
 */

export {
  DEV_DOMAIN,
  DEV_PERSON_NATIONAL_ID,
  DEV_PKI_AUTHORITIES,
  DEV_PKI_DN,
  DEV_PKI_LEAVES,
  PEER_DOMAIN,
  TEST_AUTHORITY_CN_PREFIX,
  type DevPkiAuthorityName,
  type DevPkiLeafName,
} from './dev-pki-profile.js';

export const DEV_PKI_MANIFEST_FILE = 'manifest.json';
export const DEV_PKI_WHITELIST_FILE = 'whitelist.xml';
const MANIFEST_FORMAT = 1;
const LOCK_DIR = '.lock';

/** One certificate; file paths are relative to the PKI folder. */
export interface DevPkiCertificateInfo {
  readonly certFile: string;
  readonly keyFile: string;
  /** RFC 4514 subject DN (`CN=...,OU=...,O=...,ST=...,C=FR`). */
  readonly subject: string;
  readonly issuer: string;
  /** Upper-case hex, as Node's `X509Certificate.serialNumber`. */
  readonly serial: string;
  readonly notBefore: string;
  readonly notAfter: string;
  /** SHA-256 of the DER, `AA:BB:...`, as Node's `fingerprint256`. */
  readonly fingerprint256: string;
}

export interface DevPkiCrlInfo {
  /** PEM (`-----BEGIN X509 CRL-----`). */
  readonly pemFile: string;
  /** DER, the format the national authorities publish. */
  readonly derFile: string;
  readonly crlNumber: number;
  readonly thisUpdate: string;
  readonly nextUpdate: string;
  readonly revokedSerials: readonly string[];
}

export interface DevPkiAuthorityInfo extends DevPkiCertificateInfo {
  readonly selfSigned: boolean;
  /** Absent for the foreign root, which publishes none. */
  readonly crl?: DevPkiCrlInfo;
}

export interface DevPkiLeafInfo extends DevPkiCertificateInfo {
  /** The leaf, then its intermediate (the leaf alone when a root issued it). */
  readonly chainFile: string;
  readonly issuedBy: DevPkiAuthorityName;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly extKeyUsage: readonly ExtendedKeyUsage[];
  /** The person's national id (8 + RPPS), on the CPS-like certificate only. */
  readonly nationalId?: string;
}

export interface DevPkiManifest {
  readonly formatVersion: typeof MANIFEST_FORMAT;
  readonly generatedAt: string;
  readonly authorities: Readonly<Record<DevPkiAuthorityName, DevPkiAuthorityInfo>>;
  readonly leaves: Readonly<Record<DevPkiLeafName, DevPkiLeafInfo>>;
  readonly whitelist: {
    readonly file: string;
    readonly entries: readonly { readonly domain: string; readonly dn: string }[];
  };
}

export interface GenerateDevPkiOptions {
  /** Reference time for every validity period and CRL date. Default: the current time. */
  readonly now?: Date;
}

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

function addYears(date: Date, years: number): Date {
  const d = new Date(date);
  d.setUTCFullYear(d.getUTCFullYear() + years);
  return d;
}

function fingerprint256(der: Buffer): string {
  return createHash('sha256').update(der).digest('hex').toUpperCase().match(/../g)?.join(':') ?? '';
}

/** Temp file then rename: a reader (another process starting) never sees a half-written file. */
async function writeAtomic(file: string, data: string | Buffer, mode = 0o644): Promise<void> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, data, { mode });
  await rename(tmp, file);
}

function certificateInfo(
  cert: IssuedCertificate,
  issuerDn: string,
  files: { certFile: string; keyFile: string },
): DevPkiCertificateInfo {
  return {
    ...files,
    subject: formatDn(cert.subject),
    issuer: issuerDn,
    serial: cert.serial,
    notBefore: cert.notBefore.toISOString(),
    notAfter: cert.notAfter.toISOString(),
    fingerprint256: fingerprint256(cert.der),
  };
}

type Authorities = Record<DevPkiAuthorityName, IssuedCertificate>;

/** Roots first, then the intermediates they sign. */
function issueAuthorities(keys: Record<DevPkiAuthorityName, RsaKey>, notBefore: Date): Authorities {
  const issued: Partial<Authorities> = {};
  const order = [...DEV_PKI_AUTHORITIES].sort(
    (a, b) =>
      Number(AUTHORITY_PROFILES[a].issuer !== undefined) - Number(AUTHORITY_PROFILES[b].issuer !== undefined),
  );
  for (const name of order) {
    const profile = AUTHORITY_PROFILES[name];
    const issuer = profile.issuer === undefined ? undefined : issued[profile.issuer];
    issued[name] = issueCertificate({
      subject: profile.subject,
      key: keys[name],
      notBefore,
      notAfter: addYears(notBefore, profile.validityYears),
      ...(issuer ? { issuer } : {}),
      ca: profile.pathLength === undefined ? {} : { pathLength: profile.pathLength },
    });
  }
  return issued as Authorities;
}

function issueLeaf(
  name: DevPkiLeafName,
  key: RsaKey,
  authorities: Authorities,
  now: Date,
): IssuedCertificate {
  const profile = LEAF_PROFILES[name];
  // Backdated a day so that a peer whose clock is slightly behind still accepts it.
  const notBefore = profile.expired ? addYears(now, -2) : new Date(now.getTime() - DAY);
  return issueCertificate({
    subject: profile.subject,
    key,
    notBefore,
    notAfter: profile.expired ? addYears(now, -1) : addYears(notBefore, 3),
    issuer: authorities[profile.issuer],
    extKeyUsage: profile.extKeyUsage,
    dnsNames: profile.dnsNames,
    ipAddresses: profile.ipAddresses,
  });
}

async function writeLeaf(
  dir: string,
  name: DevPkiLeafName,
  cert: IssuedCertificate,
  authorities: Authorities,
): Promise<DevPkiLeafInfo> {
  const profile = LEAF_PROFILES[name];
  const issuer = authorities[profile.issuer];
  const issuedByRoot = AUTHORITY_PROFILES[profile.issuer].issuer === undefined;
  const files = { certFile: `${name}.crt`, keyFile: `${name}.key` };
  const chainFile = `${name}.chain.pem`;
  await writeAtomic(path.join(dir, files.certFile), cert.pem);
  await writeAtomic(path.join(dir, files.keyFile), cert.key.pem, 0o600);
  // A peer sends its intermediate but never the root (RFC 8446 §4.4.2 lets the root be omitted).
  await writeAtomic(path.join(dir, chainFile), issuedByRoot ? cert.pem : cert.pem + issuer.pem);
  return {
    ...certificateInfo(cert, formatDn(issuer.subject), files),
    chainFile,
    issuedBy: profile.issuer,
    dnsNames: [...profile.dnsNames],
    ipAddresses: [...profile.ipAddresses],
    extKeyUsage: [...profile.extKeyUsage],
    ...(profile.nationalId === undefined ? {} : { nationalId: profile.nationalId }),
  };
}

async function writeAuthority(
  dir: string,
  name: DevPkiAuthorityName,
  authorities: Authorities,
  revokedLeaves: readonly IssuedCertificate[],
  now: Date,
): Promise<DevPkiAuthorityInfo> {
  const cert = authorities[name];
  const issuerName = AUTHORITY_PROFILES[name].issuer;
  const issuer = issuerName === undefined ? cert : authorities[issuerName];
  const files = { certFile: `ca/${name}.crt`, keyFile: `ca/${name}.key` };
  await writeAtomic(path.join(dir, files.certFile), cert.pem);
  await writeAtomic(path.join(dir, files.keyFile), cert.key.pem, 0o600);
  const info = {
    ...certificateInfo(cert, formatDn(issuer.subject), files),
    selfSigned: issuerName === undefined,
  };
  if (!AUTHORITY_PROFILES[name].publishesCrl) return info;

  // Development dates: an hour back for clock skew, five years ahead so nobody has to re-sign.
  const thisUpdate = new Date(now.getTime() - HOUR);
  const nextUpdate = addYears(now, 5);
  const revoked = revokedLeaves.map((leaf) => ({
    serial: leaf.serial,
    revocationDate: new Date(now.getTime() - 2 * HOUR),
    reason: 'keyCompromise' as const,
  }));
  const crl = buildCrl({ issuer: cert, thisUpdate, nextUpdate, crlNumber: 1, revoked });
  const crlFiles = { pemFile: `ca/${name}.crl`, derFile: `ca/${name}.crl.der` };
  await writeAtomic(path.join(dir, crlFiles.pemFile), crl.pem);
  await writeAtomic(path.join(dir, crlFiles.derFile), crl.der);
  return {
    ...info,
    crl: {
      ...crlFiles,
      crlNumber: 1,
      thisUpdate: thisUpdate.toISOString(),
      nextUpdate: nextUpdate.toISOString(),
      revokedSerials: revoked.map((r) => r.serial),
    },
  };
}

async function generateUnlocked(dir: string, nowOption: Date): Promise<DevPkiManifest> {
  // X.509 times have a one-second resolution: round so that the manifest says what the files say.
  const now = new Date(Math.floor(nowOption.getTime() / 1000) * 1000);
  await mkdir(path.join(dir, 'ca'), { recursive: true });
  // Without a manifest, concurrent ensureDevPki callers wait instead of reading a half-replaced set.
  await rm(path.join(dir, DEV_PKI_MANIFEST_FILE), { force: true });

  const names = [...DEV_PKI_AUTHORITIES, ...DEV_PKI_LEAVES];
  const keyList = await Promise.all(names.map(() => generateRsaKey()));
  const keys = Object.fromEntries(names.map((n, i) => [n, keyList[i]])) as Record<
    DevPkiAuthorityName | DevPkiLeafName,
    RsaKey
  >;

  const authorities = issueAuthorities(keys, new Date(now.getTime() - DAY));
  const leafCerts = Object.fromEntries(
    DEV_PKI_LEAVES.map((name) => [name, issueLeaf(name, keys[name], authorities, now)]),
  ) as Record<DevPkiLeafName, IssuedCertificate>;

  const authorityInfo: Partial<Record<DevPkiAuthorityName, DevPkiAuthorityInfo>> = {};
  for (const name of DEV_PKI_AUTHORITIES) {
    const revoked = DEV_PKI_LEAVES.filter(
      (leaf) => LEAF_PROFILES[leaf].revoked && LEAF_PROFILES[leaf].issuer === name,
    ).map((leaf) => leafCerts[leaf]);
    authorityInfo[name] = await writeAuthority(dir, name, authorities, revoked, now);
  }
  const leafInfo: Partial<Record<DevPkiLeafName, DevPkiLeafInfo>> = {};
  for (const name of DEV_PKI_LEAVES) {
    leafInfo[name] = await writeLeaf(dir, name, leafCerts[name], authorities);
  }

  const whitelistEntries = DEV_WHITELIST.map((e) => ({
    ...e,
    operatorDn: formatDn(LEAF_PROFILES[e.leaf].subject),
    updatedAt: now,
  }));
  await writeAtomic(path.join(dir, DEV_PKI_WHITELIST_FILE), renderWhitelistXml(now, whitelistEntries));

  const manifest: DevPkiManifest = {
    formatVersion: MANIFEST_FORMAT,
    generatedAt: now.toISOString(),
    authorities: authorityInfo as Record<DevPkiAuthorityName, DevPkiAuthorityInfo>,
    leaves: leafInfo as Record<DevPkiLeafName, DevPkiLeafInfo>,
    whitelist: {
      file: DEV_PKI_WHITELIST_FILE,
      entries: whitelistEntries.map((e) => ({ domain: e.domain, dn: e.operatorDn })),
    },
  };
  // Written last: its presence is what tells readers the set is complete.
  await writeAtomic(path.join(dir, DEV_PKI_MANIFEST_FILE), `${JSON.stringify(manifest, null, 2)}\n`);
  return manifest;
}

/**
 * (Re)generates the whole development PKI into `dir` (created if needed), overwriting what is there
 * except `README.md`. Holds the folder's lock, so it never interleaves with ensureDevPki elsewhere.
 */
export async function generateDevPki(
  dir: string,
  options: GenerateDevPkiOptions = {},
): Promise<DevPkiManifest> {
  await mkdir(dir, { recursive: true });
  return withDirLock(path.join(dir, LOCK_DIR), () => generateUnlocked(dir, options.now ?? new Date()));
}

/**
 * The manifest of a complete, current set in `dir`, or undefined when the set must be (re)generated:
 * absent, unreadable, from another format version, missing a file, or with a certificate or CRL
 * that has run out (a development folder can outlive its three-year leaves).
 */
export async function readDevPkiManifest(dir: string, now = new Date()): Promise<DevPkiManifest | undefined> {
  let manifest: Partial<DevPkiManifest>;
  try {
    manifest = JSON.parse(
      await readFile(path.join(dir, DEV_PKI_MANIFEST_FILE), 'utf8'),
    ) as Partial<DevPkiManifest>;
  } catch {
    return undefined;
  }
  if (manifest.formatVersion !== MANIFEST_FORMAT || !manifest.authorities || !manifest.leaves)
    return undefined;
  const ended = (iso: string): boolean => !(new Date(iso) > now);
  const files: string[] = [manifest.whitelist?.file ?? DEV_PKI_WHITELIST_FILE];
  for (const name of DEV_PKI_AUTHORITIES) {
    const info = manifest.authorities[name] as DevPkiAuthorityInfo | undefined;
    if (!info || ended(info.notAfter)) return undefined;
    files.push(info.certFile, info.keyFile);
    if (info.crl) {
      if (ended(info.crl.nextUpdate)) return undefined;
      files.push(info.crl.pemFile, info.crl.derFile);
    }
  }
  for (const name of DEV_PKI_LEAVES) {
    const info = manifest.leaves[name] as DevPkiLeafInfo | undefined;
    if (!info || (!LEAF_PROFILES[name].expired && ended(info.notAfter))) return undefined;
    files.push(info.certFile, info.keyFile, info.chainFile);
  }
  try {
    await Promise.all(files.map((f) => access(path.join(dir, f))));
  } catch {
    return undefined;
  }
  return manifest as DevPkiManifest;
}

/**
 * Generates the development PKI into `dir` unless a complete, current set is already there. Safe
 * when several processes call it at once (npm start and test workers): one generates under the
 * folder lock, the others wait and return its manifest with `generated: false`.
 */
export async function ensureDevPki(dir: string): Promise<{ generated: boolean; manifest: DevPkiManifest }> {
  const existing = await readDevPkiManifest(dir);
  if (existing) return { generated: false, manifest: existing };
  await mkdir(dir, { recursive: true });
  return withDirLock<{ generated: boolean; manifest: DevPkiManifest }>(
    path.join(dir, LOCK_DIR),
    async () => ({ generated: true, manifest: await generateUnlocked(dir, new Date()) }),
    async () => {
      const manifest = await readDevPkiManifest(dir);
      return manifest ? { generated: false, manifest } : undefined;
    },
  );
}

/**
 * The configuration settings that use a development PKI folder (what `config/default.yaml` says for
 * `certs-dev/`): for tests, benchmarks and tools that generate their own folder.
 */
export function devPkiSettings(dir: string) {
  const p = (f: string) => path.join(dir, f);
  return {
    pkiDir: dir,
    whitelistFile: p(DEV_PKI_WHITELIST_FILE),
    tls: {
      certFile: p('gateway.crt'),
      keyFile: p('gateway.key'),
      chainFiles: [p('ca/org.crt')],
      caFiles: ['root', 'org', 'pp'].map((n) => p(`ca/${n}.crt`)),
      crlFiles: ['root', 'org', 'pp'].map((n) => p(`ca/${n}.crl`)),
    },
  };
}
