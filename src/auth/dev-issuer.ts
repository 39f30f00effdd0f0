import {
  createHash,
  createPrivateKey,
  randomBytes,
  randomUUID,
  sign,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { GatewayError } from '../errors/index.js';
import { generateJwkPair } from '../shared/index.js';
import { parseNationalId } from './national-id.js';
import type { TokenIssuer } from './token-verifier.js';

/**
 * The development token issuer: plays Pro Santé Connect on a developer's machine so that IMAP and
 * submission can be tried with XOAUTH2/OAUTHBEARER without a real realm. Its key pair lives in the
 * development PKI folder (`<pkiDir>/dev-issuer/`), and its configuration entry is marked
 * `development`, which production refuses (token-verifier.ts).
 *
 * It signs with node:crypto rather than jose: `mssgw dev-token` must answer in 0.3 s (issue #16), and
 * loading jose and WebCrypto, importing the key and signing there cost it 5-15 ms of CPU. The token
 * is the compact JWS that jose wrote (RFC 7515 §7.1, ES256 signature as R || S per RFC 7518 §3.4),
 * which the gateway verifies with jose (token-verifier.ts). Keep this file's imports light: the CLI
 * loads it alone (cli-dev-token.ts).
 */

/** The members of an EC P-256 JWK that we read and write (RFC 7517, RFC 7518 §6.2). */
interface EcJwk {
  readonly kty: string;
  readonly crv: string;
  readonly x: string;
  readonly y: string;
  readonly d?: string;
  readonly kid?: string;
  readonly alg?: string;
  readonly use?: string;
}

export const DEV_ISSUER_NAME = 'development';
/** Shaped like a Pro Santé Connect realm URL; `.invalid` (RFC 6761 §6.4) never resolves. */
export const DEV_ISSUER_URL = 'https://dev-issuer.mssgw.invalid/realms/esante-wallet';
/** The `azp` of development tokens. */
export const DEV_CLIENT_ID = 'mssgw-dev';
/** The claim Pro Santé Connect carries the national id in (the default `nationalIdClaim`). */
const NATIONAL_ID_CLAIM = 'SubjectNameID';
const ALG = 'ES256';
const DIR = 'dev-issuer';
const PRIVATE_FILE = 'private.jwk.json';
const JWKS_FILE = 'jwks.json';
/** Longest development token: a day. */
export const DEV_TOKEN_MAX_TTL_SECONDS = 86_400;

export interface DevIssuerFiles {
  readonly dir: string;
  readonly privateKeyFile: string;
  readonly jwksFile: string;
}

export function devIssuerFiles(pkiDir: string): DevIssuerFiles {
  const dir = path.join(pkiDir, DIR);
  return { dir, privateKeyFile: path.join(dir, PRIVATE_FILE), jwksFile: path.join(dir, JWKS_FILE) };
}

/** The `auth.issuers` entry of the development issuer; the composition root adds it in development mode. */
export function devIssuerConfig(pkiDir: string): TokenIssuer {
  return {
    name: DEV_ISSUER_NAME,
    issuer: DEV_ISSUER_URL,
    jwksFile: devIssuerFiles(pkiDir).jwksFile,
    nationalIdClaim: NATIONAL_ID_CLAIM,
    development: true,
  };
}

/** The issuers to trust: the configured ones, plus the development issuer in development mode. */
export function effectiveIssuers(config: {
  readonly mode: 'development' | 'production';
  readonly pkiDir: string;
  readonly auth: { readonly issuers: readonly TokenIssuer[] };
}): TokenIssuer[] {
  const configured = [...config.auth.issuers];
  if (config.mode !== 'development' || configured.some((i) => i.issuer === DEV_ISSUER_URL)) return configured;
  return [...configured, devIssuerConfig(config.pkiDir)];
}

function isErrno(err: unknown, code: string): boolean {
  return err instanceof Error && (err as NodeJS.ErrnoException).code === code;
}

async function readPrivateJwk(file: string): Promise<EcJwk | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as EcJwk;
  } catch (err) {
    if (isErrno(err, 'ENOENT')) return undefined;
    throw new GatewayError(
      'PKI_INVALID',
      `development issuer key ${file} is unreadable; delete it to regenerate`,
      {
        file,
      },
    );
  }
}

/** The JWK thumbprint (RFC 7638 §3.2): SHA-256 of the required EC members in lexicographic order. */
function thumbprint(jwk: EcJwk): string {
  const { crv, kty, x, y } = jwk;
  return createHash('sha256').update(JSON.stringify({ crv, kty, x, y })).digest('base64url');
}

async function newPrivateJwk(): Promise<EcJwk> {
  const jwk = (await generateJwkPair(ALG)).privateJwk as unknown as EcJwk;
  return { ...jwk, kid: thumbprint(jwk), alg: ALG, use: 'sig' };
}

function publicJwk(jwk: EcJwk): EcJwk {
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { kty, crv, x, y, kid, alg, use } as EcJwk;
}

/**
 * Creates `file` with `content` unless it exists: written aside, then hard-linked into place, which
 * fails with EEXIST for all but the first of several concurrent callers. True when ours won.
 */
async function createExclusive(file: string, content: string): Promise<boolean> {
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  try {
    await link(tmp, file);
    return true;
  } catch (err) {
    if (isErrno(err, 'EEXIST')) return false;
    throw err;
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * The development issuer's private key, generated on first use (idempotent; concurrent callers,
 * in one process or several, all end up with the same key), and its public `jwks.json` rewritten
 * from it so that the file always matches the key.
 */
export async function ensureDevIssuer(pkiDir: string): Promise<{ files: DevIssuerFiles; privateJwk: EcJwk }> {
  const files = devIssuerFiles(pkiDir);
  await mkdir(files.dir, { recursive: true, mode: 0o700 });
  let privateJwk = await readPrivateJwk(files.privateKeyFile);
  if (!privateJwk) {
    await createExclusive(files.privateKeyFile, `${JSON.stringify(await newPrivateJwk(), null, 2)}\n`);
    privateJwk = await readPrivateJwk(files.privateKeyFile);
    if (!privateJwk)
      throw new GatewayError('INTERNAL', 'development issuer key vanished while being created');
  }
  const jwks = `${JSON.stringify({ keys: [publicJwk(privateJwk)] }, null, 2)}\n`;
  // Same key, same bytes: concurrent writers write identical content; the rename is atomic.
  const tmp = `${files.jwksFile}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(tmp, jwks, { mode: 0o644 });
  await rename(tmp, files.jwksFile);
  return { files, privateJwk };
}

export interface MintDevTokenOptions {
  readonly pkiDir: string;
  /** The person's national id (8+RPPS or 0+ADELI). */
  readonly subject: string;
  /** Default 3600, at most a day. */
  readonly ttlSeconds?: number;
  /** `aud` claim, when the gateway's development configuration checks one. */
  readonly audience?: string | readonly string[];
  readonly now?: Date;
}

/** A signed access token of the development issuer, shaped like a Pro Santé Connect one. */
export async function mintDevToken(options: MintDevTokenOptions): Promise<string> {
  const nationalId = parseNationalId(options.subject);
  if (nationalId === undefined) {
    throw new GatewayError(
      'REQUEST_INVALID',
      `subject "${options.subject}" is not a national id: 8 + the 11-digit RPPS number, or 0 + the ADELI number`,
    );
  }
  const ttl = options.ttlSeconds ?? 3600;
  if (!Number.isInteger(ttl) || ttl < 1 || ttl > DEV_TOKEN_MAX_TTL_SECONDS) {
    throw new GatewayError(
      'REQUEST_INVALID',
      `ttl must be a whole number of seconds from 1 to ${DEV_TOKEN_MAX_TTL_SECONDS}`,
    );
  }
  const { files, privateJwk } = await ensureDevIssuer(options.pkiDir);
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  // Claims in the order jose's SignJWT wrote them, so tokens keep their shape.
  const claims: Record<string, unknown> = {
    [NATIONAL_ID_CLAIM]: nationalId,
    azp: DEV_CLIENT_ID,
    scope: 'openid',
    iss: DEV_ISSUER_URL,
    sub: nationalId,
    jti: randomUUID(),
    iat,
    exp: iat + ttl,
  };
  if (options.audience !== undefined) {
    claims.aud = typeof options.audience === 'string' ? options.audience : [...options.audience];
  }
  const header = { alg: ALG, typ: 'JWT', ...(privateJwk.kid ? { kid: privateJwk.kid } : {}) };
  return signCompact(header, claims, privateJwk, files.privateKeyFile);
}

/** A compact JWS (RFC 7515 §7.1) of `payload`, signed ES256 with the private JWK. */
function signCompact(header: object, payload: object, privateJwk: EcJwk, file: string): string {
  const b64 = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const signingInput = `${b64(header)}.${b64(payload)}`;
  // JWS wants the raw R || S pair (RFC 7518 §3.4), not the DER that ECDSA signatures default to.
  const signature = sign('sha256', Buffer.from(signingInput), {
    key: signingKey(privateJwk, file),
    dsaEncoding: 'ieee-p1363',
  });
  return `${signingInput}.${signature.toString('base64url')}`;
}

/** The private key of `jwk`, which ES256 requires on P-256 (RFC 7518 §3.4). */
function signingKey(jwk: EcJwk, file: string): KeyObject {
  const invalid = (cause?: unknown) =>
    new GatewayError(
      'PKI_INVALID',
      `development issuer key ${file} is not a P-256 private key; delete it to regenerate`,
      { file },
      cause === undefined ? {} : { cause },
    );
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-256' || jwk.d === undefined) throw invalid();
  try {
    return createPrivateKey({ key: jwk as JsonWebKey, format: 'jwk' });
  } catch (err) {
    throw invalid(err);
  }
}
