import { randomUUID } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { ImapFlow } from 'imapflow';
import { startBackends } from '../src/app/index.js';
import {
  GatewayAuthenticator,
  JwtTokenVerifier,
  effectiveIssuers,
  ensureDevIssuer,
  mintDevToken,
} from '../src/auth/index.js';
import { systemClock } from '../src/shared/index.js';
import { loadConfig } from '../src/config/index.js';
import { ImapFrontEnd } from '../src/imap/index.js';
import { MemoryAuditJournal, createLogger } from '../src/observability/index.js';
import { devPkiSettings, ensureDevPki, loadTrustMaterial } from '../src/pki/index.js';
import { BalRegistry } from '../src/registry/index.js';
import { deliverLmtp, openMailboxSession, provisionMailbox } from '../src/store/index.js';
import { percentiles } from './stats.js';

/**
 * IMAP login cost through the gateway, against the same work done directly on the store, in one run
 * on loopback with the real embedded Redis and Dovecot. One round is: connect, log in, SELECT INBOX,
 * FETCH one message's source, LOGOUT — with imapflow both ways. Through the gateway: implicit TLS
 * and XOAUTH2 with a development token (token check, registry lookups, master login, pipe). Directly:
 * plain TCP and the master login. Rounds alternate so that both see the same machine state.
 */
export interface Timings {
  readonly totalMs: number;
  readonly p50Ms: number;
  readonly p95Ms: number;
}

export interface ImapLoginBenchResult {
  readonly rounds: number;
  readonly gateway: Timings;
  readonly direct: Timings;
  /** Gateway mean over direct mean. */
  readonly ratio: number;
}

function timings(values: number[]): Timings {
  const { p50, p95 } = percentiles(values);
  const round = (n: number) => Math.round(n * 100) / 100;
  return { totalMs: round(values.reduce((a, b) => a + b, 0)), p50Ms: round(p50), p95Ms: round(p95) };
}

async function timed(work: () => Promise<void>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** SELECT INBOX and FETCH the first message's source, then LOGOUT. */
async function selectFetchLogout(client: ImapFlow): Promise<void> {
  await client.mailboxOpen('INBOX');
  const message = await client.fetchOne('1', { source: true });
  if (!message || !message.source) throw new Error('message 1 not fetched');
  await client.logout();
}

export async function runImapLoginBench(rounds = 50): Promise<ImapLoginBenchResult> {
  const root = mkdtempSync(path.join(tmpdir(), 'mssgw-bench-imap-'));
  // mkdtemp makes it 0700; Dovecot's mail user must traverse it (search only, no listing).
  chmodSync(root, 0o711);
  const pkiDir = path.join(root, 'pki');
  await ensureDevPki(pkiDir);
  await ensureDevIssuer(pkiDir);
  const config = loadConfig({
    configDir: '/nonexistent',
    env: {},
    overrides: { dataDir: path.join(root, 'var'), ...devPkiSettings(pkiDir), log: { level: 'silent' } },
  });
  const logger = createLogger({ level: 'silent' });
  const backends = await startBackends(config, logger);
  const { store, redis } = backends;
  const journal = new MemoryAuditJournal();
  const trust = loadTrustMaterial(config.tls).material;
  const registry = new BalRegistry({
    redis,
    prefix: config.redis.prefix,
    domains: config.domains,
    clock: systemClock,
    journal,
    provisioner: { provision: (address) => provisionMailbox(store.imap, store.master, address) },
  });
  const authenticator = new GatewayAuthenticator({
    config: { ...config.auth, mode: config.mode },
    registry,
    redis,
    prefix: config.redis.prefix,
    authorities: () => trust.authorities,
    journal,
    logger,
    clock: systemClock,
    verifier: new JwtTokenVerifier({
      issuers: effectiveIssuers(config),
      clockSkewSeconds: config.auth.clockSkewSeconds,
      jwksCacheSeconds: config.auth.jwksCacheSeconds,
      mode: config.mode,
      clock: systemClock,
    }),
  });
  const frontEnd = new ImapFrontEnd({
    config: { ...config.imap, host: '127.0.0.1', port: 0, tlsPort: 0 },
    tls: () => ({ ...trust, minVersion: config.tls.minVersion, allowCbc: config.tls.allowCbc }),
    authenticator,
    store: { imap: store.imap, master: store.master },
    logger,
    journal,
    clock: systemClock,
  });
  try {
    const { implicit } = await frontEnd.listen();
    const owner = '810000000001';
    const bal = `bench.${randomUUID().slice(0, 8)}@${config.domains[0]}`;
    await registry.create({ address: bal, type: 'PER', owner }, { kind: 'system', id: 'bench' });
    const message = Buffer.from(
      `From: a@peer.mssante.test\r\nTo: ${bal}\r\nSubject: bench\r\n\r\n${'x'.repeat(4000)}\r\n`,
    );
    await deliverLmtp(store.lmtp, { from: 'a@peer.mssante.test', to: [bal] }, message);
    const token = await mintDevToken({ pkiDir, subject: owner, ttlSeconds: 3600 });
    const ca = readFileSync(path.join(pkiDir, 'ca/root.crt'), 'utf8');
    const viaGateway = async () => {
      const client = new ImapFlow({
        host: '127.0.0.1',
        port: implicit.port,
        secure: true,
        tls: { ca, servername: 'localhost' },
        auth: { user: bal, accessToken: token },
        logger: false,
      });
      await client.connect();
      await selectFetchLogout(client);
    };
    const direct = async () => selectFetchLogout(await openMailboxSession(store.imap, store.master, bal));
    const gatewayMs: number[] = [];
    const directMs: number[] = [];
    // One warm-up round each (JIT, JWKS file, Dovecot's first login to the mailbox).
    await viaGateway();
    await direct();
    for (let i = 0; i < rounds; i++) {
      gatewayMs.push(await timed(viaGateway));
      directMs.push(await timed(direct));
    }
    const g = timings(gatewayMs);
    const d = timings(directMs);
    return { rounds, gateway: g, direct: d, ratio: Math.round((g.totalMs / d.totalMs) * 100) / 100 };
  } finally {
    await frontEnd.close();
    await backends.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

export function formatImapLoginBench(r: ImapLoginBenchResult): string {
  const line = (name: string, t: Timings) =>
    `  ${name} mean ${(t.totalMs / r.rounds).toFixed(2)} ms, p50 ${t.p50Ms} ms, p95 ${t.p95Ms} ms`;
  return [
    `imap: ${r.rounds} sequential rounds of login + SELECT + FETCH + LOGOUT (imapflow)`,
    line('gateway (implicit TLS, XOAUTH2, master login, pipe)', r.gateway),
    line('direct  (plain TCP, master login)                  ', r.direct),
    `  ratio gateway/direct ${r.ratio}`,
  ].join('\n');
}

// `node --import tsx bench/imap-login.ts [rounds]`
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rounds = Number(process.argv[2] ?? process.env.BENCH_IMAP_ROUNDS ?? 50);
  console.log(formatImapLoginBench(await runImapLoginBench(rounds)));
}
