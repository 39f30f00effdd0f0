import { spawn, spawnSync } from 'node:child_process';
import { X509Certificate, createPrivateKey } from 'node:crypto';
import { once } from 'node:events';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DEV_DOMAIN,
  DEV_PERSON_NATIONAL_ID,
  DEV_PKI_AUTHORITIES,
  DEV_PKI_DN,
  DEV_PKI_LEAVES,
  PEER_DOMAIN,
  TEST_AUTHORITY_CN_PREFIX,
  ensureDevPki,
  generateDevPki,
  type DevPkiLeafName,
  type DevPkiManifest,
} from '../../src/pki/dev-pki.js';

// Every check below asks OpenSSL (the CLI or Node's TLS stack) what it makes of the files, rather
// than re-reading what the generator meant to write.

const OPENSSL = '/usr/bin/openssl';
const DEV_PKI_MODULE = pathToFileURL(
  path.join(path.dirname(fileURLToPath(import.meta.url)), '../../src/pki/dev-pki.ts'),
).href;

const scratch: string[] = [];
function freshDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mssgw-dev-pki-'));
  scratch.push(dir);
  return dir;
}

let dir = '';
let manifest: DevPkiManifest;
const file = (name: string): string => path.join(dir, name);
const read = (name: string): string => fs.readFileSync(file(name), 'utf8');

function openssl(args: readonly string[]): { status: number | null; output: string } {
  const r = spawnSync(OPENSSL, args, { encoding: 'utf8' });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

/** `openssl verify` against our root, with every CRL on the path (CRL_CHECK_ALL). */
function verify(leaf: DevPkiLeafName, intermediate: 'org' | 'pp'): { status: number | null; output: string } {
  return openssl([
    'verify',
    '-CAfile',
    file('ca/root.crt'),
    '-untrusted',
    file(`ca/${intermediate}.crt`),
    '-crl_check_all',
    '-CRLfile',
    file('ca/root.crl'),
    '-CRLfile',
    file(`ca/${intermediate}.crl`),
    file(`${leaf}.crt`),
  ]);
}

beforeAll(async () => {
  dir = freshDir();
  fs.writeFileSync(file('README.md'), 'kept\n');
  manifest = await generateDevPki(dir);
});

afterAll(() => {
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
});

describe('development PKI files, as OpenSSL sees them', () => {
  it('verifies the good chains with revocation checked along the whole path', () => {
    for (const leaf of ['peer-trusted', 'peer-unlisted', 'gateway', 'app-lab'] as const) {
      const r = verify(leaf, 'org');
      expect(r.output).toContain(`${leaf}.crt: OK`);
      expect(r.status).toBe(0);
    }
    const person = verify('person-dupont', 'pp');
    expect(person.output).toContain('person-dupont.crt: OK');
    expect(person.status).toBe(0);
  });

  it('rejects the revoked, expired and foreign peers for the right reason', () => {
    const revoked = verify('peer-revoked', 'org');
    expect(revoked.status).not.toBe(0);
    expect(revoked.output).toContain('certificate revoked');
    const expired = verify('peer-expired', 'org');
    expect(expired.status).not.toBe(0);
    expect(expired.output).toContain('certificate has expired');
    const foreign = verify('peer-foreign', 'org');
    expect(foreign.status).not.toBe(0);
    expect(foreign.output).toContain('unable to get local issuer certificate');
  });

  it('writes CRLs signed by their CA, in PEM and DER, listing the revoked serial as keyCompromise', () => {
    for (const ca of ['root', 'org', 'pp'] as const) {
      expect(read(`ca/${ca}.crl`)).toMatch(/^-----BEGIN X509 CRL-----\n/);
      const pem = openssl(['crl', '-in', file(`ca/${ca}.crl`), '-CAfile', file(`ca/${ca}.crt`), '-noout']);
      expect(pem.output).toContain('verify OK');
      const der = openssl(['crl', '-inform', 'DER', '-in', file(`ca/${ca}.crl.der`), '-noout', '-text']);
      expect(der.status).toBe(0);
      expect(der.output).toContain('Version 2 (0x1)');
      expect(der.output).toContain('X509v3 Authority Key Identifier');
      expect(der.output).toMatch(/X509v3 CRL Number:\s+1\n/);
      const listed = [...der.output.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]);
      expect(listed).toEqual(ca === 'org' ? [manifest.leaves['peer-revoked'].serial] : []);
    }
    expect(
      openssl(['crl', '-inform', 'DER', '-in', file('ca/org.crl.der'), '-noout', '-text']).output,
    ).toContain('Key Compromise');
  });

  it('describes every certificate in the manifest exactly as OpenSSL reads it', () => {
    const entries = [
      ...DEV_PKI_AUTHORITIES.map((n) => manifest.authorities[n]),
      ...DEV_PKI_LEAVES.map((n) => manifest.leaves[n]),
    ];
    for (const info of entries) {
      const x509 = new X509Certificate(read(info.certFile));
      expect(x509.serialNumber).toBe(info.serial);
      expect(x509.fingerprint256).toBe(info.fingerprint256);
      expect(new Date(x509.validFrom).toISOString()).toBe(info.notBefore);
      expect(new Date(x509.validTo).toISOString()).toBe(info.notAfter);
      expect(x509.publicKey.asymmetricKeyDetails?.modulusLength).toBe(2048);
      expect(x509.checkPrivateKey(createPrivateKey(read(info.keyFile)))).toBe(true);
      expect(fs.statSync(file(info.keyFile)).mode & 0o777).toBe(0o600);
      const subject = openssl([
        'x509',
        '-in',
        file(info.certFile),
        '-noout',
        '-subject',
        '-nameopt',
        'RFC2253',
      ]);
      expect(subject.output.trim()).toBe(`subject=${info.subject}`);
      const text = openssl(['x509', '-in', file(info.certFile), '-noout', '-text']).output;
      expect(text).toContain('Signature Algorithm: sha256WithRSAEncryption');
      expect(text).toContain('X509v3 Subject Key Identifier');
      expect(text).toContain('X509v3 Authority Key Identifier');
    }
    for (const ca of DEV_PKI_AUTHORITIES) {
      expect(new X509Certificate(read(`ca/${ca}.crt`)).ca).toBe(true);
      expect(manifest.authorities[ca].subject).toContain(`CN=${TEST_AUTHORITY_CN_PREFIX}`);
    }
    expect(openssl(['x509', '-in', file('ca/org.crt'), '-noout', '-text']).output).toMatch(
      /CA:TRUE, pathlen:0[\s\S]*Certificate Sign, CRL Sign/,
    );
    expect(manifest.leaves.gateway.subject).toBe(
      'CN=localhost,OU=499000000000001,O=MSSGW Operateur Dev,ST=Paris (75),C=FR',
    );
    expect(DEV_PKI_DN['peer-trusted']).toBe(
      'CN=mx.peer.mssante.test,OU=499000000000002,O=Operateur Pair Dev,ST=Rhone (69),C=FR',
    );
    expect(manifest.leaves['person-dupont'].nationalId).toBe(DEV_PERSON_NATIONAL_ID);
    expect(new Date(new X509Certificate(read('peer-expired.crt')).validTo) < new Date()).toBe(true);
    expect(read('README.md')).toBe('kept\n');
  });

  it('writes the whitelist in the national format with the manifest DNs', () => {
    const xml = read('whitelist.xml');
    expect(xml).toContain('<ListeBlancheMSSante xmlns="https://listeblanche.mssante.fr/schema">');
    expect(xml).toMatch(/<DateDeGeneration>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ<\/DateDeGeneration>/);
    const domains = [
      ...xml.matchAll(/<Nom>(.*)<\/Nom>[\s\S]*?<DNCertificatOperateur>(.*)<\/DNCertificatOperateur>/g),
    ];
    expect(domains.map((m) => [m[1], m[2]])).toEqual([
      [DEV_DOMAIN, manifest.leaves.gateway.subject],
      [PEER_DOMAIN, manifest.leaves['peer-trusted'].subject],
    ]);
    expect(manifest.whitelist.entries).toEqual([
      { domain: DEV_DOMAIN, dn: manifest.leaves.gateway.subject },
      { domain: PEER_DOMAIN, dn: manifest.leaves['peer-trusted'].subject },
    ]);
  });
});

interface HandshakeOutcome {
  /** Server side: did the client certificate verify against root + intermediates + CRLs? */
  readonly authorized: boolean;
  readonly authorizationError: string | undefined;
  /** Client side: did the gateway certificate verify against the root for servername localhost? */
  readonly serverVerifiedByClient: boolean;
}

describe('development PKI in a real TLS handshake', () => {
  let server: tls.Server;
  let port = 0;

  beforeAll(async () => {
    // The gateway's MX listener setup: every CRL loaded, so OpenSSL checks the whole chain.
    server = tls.createServer({
      key: read('gateway.key'),
      cert: read('gateway.chain.pem'),
      ca: [read('ca/root.crt'), read('ca/org.crt'), read('ca/pp.crt')],
      crl: [read('ca/root.crl'), read('ca/org.crl'), read('ca/pp.crl')],
      requestCert: true,
      rejectUnauthorized: false,
      minVersion: 'TLSv1.2',
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });

  afterAll(async () => {
    server.close();
    await once(server, 'close');
  });

  /** `certChain` overrides what the client presents: its chain file by default, nothing when null. */
  async function handshake(leaf: DevPkiLeafName, certChain?: string | null): Promise<HandshakeOutcome> {
    const accepted = once(server, 'secureConnection') as Promise<[tls.TLSSocket]>;
    const client = tls.connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: read('ca/root.crt'),
      ...(certChain === null
        ? {}
        : { key: read(`${leaf}.key`), cert: certChain ?? read(`${leaf}.chain.pem`) }),
    });
    await once(client, 'secureConnect');
    const [socket] = await accepted;
    const outcome = {
      authorized: socket.authorized,
      authorizationError: socket.authorizationError?.toString(),
      serverVerifiedByClient: client.authorized,
    };
    socket.destroy();
    client.destroy();
    return outcome;
  }

  it('authorises the whitelisted peer, the unlisted one (trust is not the whitelist) and the app', async () => {
    for (const leaf of ['peer-trusted', 'peer-unlisted', 'app-lab', 'gateway'] as const) {
      expect(await handshake(leaf)).toEqual({
        authorized: true,
        authorizationError: undefined,
        serverVerifiedByClient: true,
      });
    }
  });

  it('reports the exact OpenSSL code for each untrusted peer', async () => {
    expect(await handshake('peer-revoked')).toMatchObject({
      authorized: false,
      authorizationError: 'CERT_REVOKED',
    });
    expect(await handshake('peer-expired')).toMatchObject({
      authorized: false,
      authorizationError: 'CERT_HAS_EXPIRED',
    });
    // A lone leaf whose issuer is unknown: OpenSSL says it cannot verify the leaf's signature.
    expect(await handshake('peer-foreign')).toMatchObject({
      authorized: false,
      authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
    });
    // The same peer sending its own root along. Node's verify callback lets OpenSSL go on after each
    // error and reports the last one: SELF_SIGNED_CERT_IN_CHAIN, then no CRL for the foreign CA. So a
    // code alone does not tell a foreign chain from one of our CRLs missing.
    const withRoot = read('peer-foreign.crt') + read('ca/foreign-root.crt');
    expect(await handshake('peer-foreign', withRoot)).toMatchObject({
      authorized: false,
      authorizationError: 'UNABLE_TO_GET_CRL',
    });
    // No client certificate at all: Node's code for a missing peer certificate.
    expect(await handshake('peer-trusted', null)).toMatchObject({
      authorized: false,
      authorizationError: 'UNABLE_TO_GET_ISSUER_CERT',
    });
  });
});

describe('ensureDevPki', () => {
  /** Another process calling ensureDevPki, as `npm start` and a test worker would. */
  function ensureInChild(target: string): Promise<{ generated: boolean; gateway: string }> {
    const script = `
      const { ensureDevPki } = await import(${JSON.stringify(DEV_PKI_MODULE)});
      const r = await ensureDevPki(${JSON.stringify(target)});
      process.stdout.write(JSON.stringify({ generated: r.generated, gateway: r.manifest.leaves.gateway.fingerprint256 }));
    `;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    return once(child, 'exit').then(([code]) => {
      expect(code).toBe(0);
      return JSON.parse(out) as { generated: boolean; gateway: string };
    });
  }

  it('generates exactly once when several processes ask at the same time', async () => {
    const target = freshDir();
    const [here, alsoHere, childA, childB] = await Promise.all([
      ensureDevPki(target),
      ensureDevPki(target),
      ensureInChild(target),
      ensureInChild(target),
    ]);
    const generated = [here.generated, alsoHere.generated, childA.generated, childB.generated];
    expect(generated.filter(Boolean)).toHaveLength(1);
    const onDisk = new X509Certificate(fs.readFileSync(path.join(target, 'gateway.crt'))).fingerprint256;
    for (const fp of [here, alsoHere].map((r) => r.manifest.leaves.gateway.fingerprint256))
      expect(fp).toBe(onDisk);
    expect(childA.gateway).toBe(onDisk);
    expect(childB.gateway).toBe(onDisk);
    expect(fs.existsSync(path.join(target, '.lock'))).toBe(false);

    const again = await ensureDevPki(target);
    expect(again.generated).toBe(false);
    expect(again.manifest).toEqual(here.manifest);
  });

  it('breaks a lock left by a crashed process once it is stale', async () => {
    const target = freshDir();
    const lock = path.join(target, '.lock');
    fs.mkdirSync(lock);
    const twoMinutesAgo = new Date(Date.now() - 120_000);
    fs.utimesSync(lock, twoMinutesAgo, twoMinutesAgo);
    const r = await ensureDevPki(target);
    expect(r.generated).toBe(true);
    expect(fs.existsSync(lock)).toBe(false);
  });
});
