import { randomBytes, randomUUID } from 'node:crypto';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { SignJWT, calculateJwkThumbprint, importJWK, type JWK } from 'jose';
import { GatewayError } from '../errors/index.js';
import { generateJwkPair } from '../shared/index.js';
import { parseNationalId } from './national-id.js';
import type { TokenIssuer } from './token-verifier.js';

/**
 * The development token issuer: plays Pro Santé Connect on a developer's machine so that IMAP and
 * submission can be tried with XOAUTH2/OAUTHBEARER without a real realm. Its key pair lives in the
 * development PKI folder (`<pkiDir>/dev-issuer/`), and its configuration entry is marked
 * `development`, which production refuses (token-verifier.ts).
 */

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

async function readPrivateJwk(file: string): Promise<JWK | undefined> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as JWK;
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

async function newPrivateJwk(): Promise<JWK> {
  const jwk: JWK = (await generateJwkPair(ALG)).privateJwk;
  const kid = await calculateJwkThumbprint(jwk);
  return { ...jwk, kid, alg: ALG, use: 'sig' };
}

function publicJwk(jwk: JWK): JWK {
  const { kty, crv, x, y, kid, alg, use } = jwk;
  return { kty, crv, x, y, kid, alg, use } as JWK;
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
export async function ensureDevIssuer(pkiDir: string): Promise<{ files: DevIssuerFiles; privateJwk: JWK }> {
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
  const { privateJwk } = await ensureDevIssuer(options.pkiDir);
  const key = await importJWK(privateJwk, ALG);
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const jwt = new SignJWT({ [NATIONAL_ID_CLAIM]: nationalId, azp: DEV_CLIENT_ID, scope: 'openid' })
    .setProtectedHeader({ alg: ALG, typ: 'JWT', ...(privateJwk.kid ? { kid: privateJwk.kid } : {}) })
    .setIssuer(DEV_ISSUER_URL)
    .setSubject(nationalId)
    .setJti(randomUUID())
    .setIssuedAt(iat)
    .setExpirationTime(iat + ttl);
  if (options.audience !== undefined) {
    jwt.setAudience(typeof options.audience === 'string' ? options.audience : [...options.audience]);
  }
  return jwt.sign(key);
}
