import { X509Certificate, createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { GatewayError } from '../errors/index.js';

/**
 * Everything TLS needs from files: our certificate and key, the trusted authorities and their
 * revocation lists. Loading validates each piece, so a broken file is reported with its path at
 * start-up, and a reload keeps the last good copy of a CRL that no longer parses.
 */
export interface TrustMaterial {
  readonly cert: string;
  readonly key: string;
  readonly ca: readonly string[];
  readonly crl: readonly string[];
  /** Per CRL file, the PEM in service (last good copy). */
  readonly crlByFile: ReadonlyMap<string, string>;
  readonly certificate: X509Certificate;
  readonly authorities: readonly X509Certificate[];
}

export interface TrustFiles {
  readonly certFile: string;
  readonly keyFile: string;
  readonly chainFiles: readonly string[];
  readonly caFiles: readonly string[];
  readonly crlFiles: readonly string[];
}

export interface TrustLoadResult {
  readonly material: TrustMaterial;
  /** CRL files that failed to load and are served from the previous copy. */
  readonly staleCrls: ReadonlyArray<{ file: string; reason: string }>;
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new GatewayError('PKI_INVALID', `cannot read ${what} ${file}: ${(err as Error).message}`, { file });
  }
}

function certificatesIn(file: string, what: string): string[] {
  const pems = readText(file, what).match(PEM_CERT) ?? [];
  if (pems.length === 0)
    throw new GatewayError('PKI_INVALID', `${file} holds no PEM certificate (${what})`, { file });
  return pems;
}

/** National CRLs are DER; Node wants PEM. */
export function crlToPem(data: Buffer): string {
  const asText = data.toString('latin1');
  if (asText.includes('-----BEGIN X509 CRL-----')) return asText;
  if (data[0] !== 0x30) throw new GatewayError('PKI_INVALID', 'neither a PEM nor a DER CRL');
  const b64 = data.toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN X509 CRL-----\n${b64.replace(/\n$/, '')}\n-----END X509 CRL-----\n`;
}

function loadCrl(file: string, ca: readonly string[]): string {
  const pem = crlToPem(readFileSync(file));
  // OpenSSL parses the CRL when it joins a context: a truncated or garbage file fails here.
  createSecureContext({ ca: [...ca], crl: pem });
  return pem;
}

export function loadTrustMaterial(files: TrustFiles, previous?: TrustMaterial): TrustLoadResult {
  const leaf = certificatesIn(files.certFile, 'our certificate');
  const chain = files.chainFiles.flatMap((f) => certificatesIn(f, 'certificate chain'));
  const key = readText(files.keyFile, 'our private key');
  const certificate = new X509Certificate(leaf[0]!);
  try {
    if (!certificate.checkPrivateKey(createPrivateKey(key))) {
      throw new GatewayError('PKI_INVALID', `${files.keyFile} is not the key of ${files.certFile}`);
    }
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new GatewayError('PKI_INVALID', `${files.keyFile} is not a readable private key`, {
      file: files.keyFile,
    });
  }
  const ca = files.caFiles.flatMap((f) => certificatesIn(f, 'trusted authority'));
  const authorities = ca.map((pem) => new X509Certificate(pem));
  const crlByFile = new Map<string, string>();
  const staleCrls: Array<{ file: string; reason: string }> = [];
  for (const file of files.crlFiles) {
    try {
      crlByFile.set(file, loadCrl(file, ca));
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      const last = previous?.crlByFile.get(file);
      if (!last)
        throw new GatewayError('PKI_INVALID', `revocation list ${file} cannot be loaded: ${reason}`, {
          file,
        });
      crlByFile.set(file, last);
      staleCrls.push({ file, reason });
    }
  }
  const material: TrustMaterial = {
    cert: [...leaf, ...chain].join('\n'),
    key,
    ca,
    crl: [...crlByFile.values()],
    crlByFile,
    certificate,
    authorities,
  };
  return { material, staleCrls };
}

/**
 * Test and development authorities carry a `TEST` prefix (MSSANTE.md "Certificates") and must never be
 * trusted in production; nor may our own certificate come from them.
 */
export function assertProductionTrust(material: TrustMaterial): void {
  const isTest = (subject: string) => /(^|\n)CN=TEST[ _-]/i.test(subject) || /MSSGW-DEV/i.test(subject);
  const bad = material.authorities
    .filter((a) => isTest(a.subject))
    .map((a) => a.subject.replace(/\n/g, ', '));
  if (isTest(material.certificate.issuer))
    bad.push(`issuer of our certificate: ${material.certificate.issuer.replace(/\n/g, ', ')}`);
  if (bad.length > 0) {
    throw new GatewayError(
      'PKI_TEST_ANCHOR_IN_PRODUCTION',
      `mode is production but test authorities are configured (tls.caFiles / tls.certFile): ${bad.join('; ')}`,
    );
  }
}
