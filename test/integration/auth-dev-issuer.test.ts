import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command } from 'commander';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { describe, expect, inject, it } from 'vitest';
import type { CliIo } from '../../src/admin/cli-context.js';
import { buildCli } from '../../src/admin/cli.js';
import {
  DEV_ISSUER_URL,
  JwtTokenVerifier,
  devIssuerConfig,
  effectiveIssuers,
  ensureDevIssuer,
  mintDevToken,
} from '../../src/auth/index.js';
import { registerDevTokenCommand } from '../../src/admin/index.js';
import { ConfigSchema, type Config } from '../../src/config/index.js';
import { GatewayError } from '../../src/errors/index.js';
import { runMssgw } from '../helpers/admin-cli.js';

function scratchPki(): string {
  const dir = path.join(inject('scratchDir'), `dev-issuer-${randomUUID().slice(0, 8)}`);
  mkdirSync(dir, { recursive: true });
  return dir;
}

function devVerifier(pkiDir: string, mode: 'development' | 'production' = 'development') {
  return new JwtTokenVerifier({
    issuers: [devIssuerConfig(pkiDir)],
    clockSkewSeconds: 30,
    jwksCacheSeconds: 600,
    mode,
    clock: { now: () => new Date() },
  });
}

describe('development issuer', () => {
  it('generates one key pair on demand, whatever the number of concurrent callers', async () => {
    const pkiDir = scratchPki();
    const results = await Promise.all(Array.from({ length: 8 }, () => ensureDevIssuer(pkiDir)));
    const kids = new Set(results.map((r) => r.privateJwk.kid));
    expect(kids.size).toBe(1);
    const { files } = results[0]!;
    expect(statSync(files.privateKeyFile).mode & 0o777).toBe(0o600);
    const jwks = JSON.parse(readFileSync(files.jwksFile, 'utf8')) as { keys: Array<Record<string, unknown>> };
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kid: [...kids][0], alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
    // Idempotent: a later call keeps the key.
    expect((await ensureDevIssuer(pkiDir)).privateJwk.kid).toBe([...kids][0]);
  });

  it('mints tokens shaped like Pro Santé Connect ones, which the verifier accepts', async () => {
    const pkiDir = scratchPki();
    const token = await mintDevToken({ pkiDir, subject: '810000000001', ttlSeconds: 120, audience: 'mssgw' });
    const claims = decodeJwt(token);
    expect(decodeProtectedHeader(token)).toMatchObject({ alg: 'ES256', typ: 'JWT' });
    expect(claims).toMatchObject({ iss: DEV_ISSUER_URL, SubjectNameID: '810000000001', aud: 'mssgw' });
    expect(claims.exp! - claims.iat!).toBe(120);
    await expect(devVerifier(pkiDir).verify(token)).resolves.toMatchObject({
      issuer: 'development',
      nationalId: '810000000001',
    });
    // The compact form jose's SignJWT wrote before node:crypto signed these tokens: the same header
    // and claims in the same order, and an ES256 signature as R || S (RFC 7518 §3.4), not DER.
    const [header, payload, signature] = token.split('.').map((part) => Buffer.from(part, 'base64url'));
    const { privateJwk } = await ensureDevIssuer(pkiDir);
    expect(header?.toString()).toBe(JSON.stringify({ alg: 'ES256', typ: 'JWT', kid: privateJwk.kid }));
    expect(Object.keys(JSON.parse(String(payload)) as object)).toEqual([
      'SubjectNameID',
      'azp',
      'scope',
      'iss',
      'sub',
      'jti',
      'iat',
      'exp',
      'aud',
    ]);
    expect(signature).toHaveLength(64);
  });

  it('refuses to sign with a key that is not a P-256 private key', async () => {
    const pkiDir = scratchPki();
    const { files } = await ensureDevIssuer(pkiDir);
    const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    writeFileSync(files.privateKeyFile, JSON.stringify(privateKey.export({ format: 'jwk' })));
    await expect(mintDevToken({ pkiDir, subject: '810000000001' })).rejects.toMatchObject({
      code: 'PKI_INVALID',
    });
  });

  it('refuses bad subjects and lifetimes', async () => {
    const pkiDir = scratchPki();
    await expect(mintDevToken({ pkiDir, subject: 'dupont' })).rejects.toMatchObject({
      code: 'REQUEST_INVALID',
    });
    await expect(mintDevToken({ pkiDir, subject: '810000000001', ttlSeconds: 0 })).rejects.toMatchObject({
      code: 'REQUEST_INVALID',
    });
    await expect(mintDevToken({ pkiDir, subject: '810000000001', ttlSeconds: 86_401 })).rejects.toMatchObject(
      {
        code: 'REQUEST_INVALID',
      },
    );
  });

  it('is trusted in development mode only', () => {
    const pkiDir = scratchPki();
    expect(() => devVerifier(pkiDir, 'production')).toThrow(GatewayError);
    expect(() => devVerifier(pkiDir, 'production')).toThrow(/development issuer/);
    const base = { pkiDir, auth: { issuers: [] } };
    expect(effectiveIssuers({ ...base, mode: 'development' })).toEqual([devIssuerConfig(pkiDir)]);
    expect(effectiveIssuers({ ...base, mode: 'production' })).toEqual([]);
  });

  it('answers AUTH_ISSUER_UNAVAILABLE when its JWKS file is missing', async () => {
    const token = await mintDevToken({ pkiDir: scratchPki(), subject: '810000000001' });
    await expect(devVerifier(scratchPki()).verify(token)).rejects.toMatchObject({
      code: 'AUTH_ISSUER_UNAVAILABLE',
    });
  });
});

describe('mssgw dev-token', () => {
  function captureIo(config: Config): CliIo & { out: string[]; err: string[] } {
    const out: string[] = [];
    const err: string[] = [];
    return {
      out,
      err,
      stdout: (t) => out.push(t),
      stderr: (t) => err.push(t),
      env: {},
      loadConfig: () => config,
    };
  }

  async function run(io: CliIo, args: string[]): Promise<void> {
    const program = new Command('mssgw')
      .exitOverride()
      .configureOutput({ writeOut: (t) => io.stdout(t), writeErr: (t) => io.stderr(t) });
    registerDevTokenCommand(program, io);
    await program.parseAsync(['node', 'mssgw', ...args]);
  }

  it('prints a token of the development issuer and nothing else', async () => {
    const pkiDir = scratchPki();
    const io = captureIo(ConfigSchema.parse({ pkiDir }));
    await run(io, ['dev-token', '--subject', '810000000001', '--ttl', '60']);
    expect(io.out).toHaveLength(1);
    expect(io.out[0]).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+\n$/);
    const token = io.out[0]!.trim();
    await expect(devVerifier(pkiDir).verify(token)).resolves.toMatchObject({ nationalId: '810000000001' });
    expect(decodeJwt(token).exp! - decodeJwt(token).iat!).toBe(60);
  });

  it('refuses in production mode and a malformed --ttl', async () => {
    const production = captureIo(ConfigSchema.parse({ pkiDir: scratchPki(), mode: 'production' }));
    await expect(run(production, ['dev-token', '--subject', '810000000001'])).rejects.toMatchObject({
      code: 'CONFIG_INVALID',
    });
    const io = captureIo(ConfigSchema.parse({ pkiDir: scratchPki() }));
    await expect(run(io, ['dev-token', '--subject', '810000000001', '--ttl', '1h'])).rejects.toThrow();
    expect(io.out).toEqual([]);
    expect(io.err.join('')).toMatch(/whole number of seconds/);
  });

  // Runs once the lead has registered the command in src/admin/cli.ts.
  const registered = buildCli().commands.some((c) => c.name() === 'dev-token');
  it.runIf(registered)('works as a real process (node --import tsx src/admin/cli-main.ts)', async () => {
    const pkiDir = scratchPki();
    const run = await runMssgw(['dev-token', '--subject', '810000000001', '--dir', pkiDir]);
    expect(run.stderr).toBe('');
    expect(run.code).toBe(0);
    await expect(devVerifier(pkiDir).verify(run.stdout.trim())).resolves.toMatchObject({
      issuer: 'development',
    });
  });
});
