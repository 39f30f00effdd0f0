import { randomUUID } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  closeSync,
  existsSync,
  fstatSync,
  openSync,
  readFileSync,
  readSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:net';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { embeddedStoreDir } from '../src/app/index.js';
import { mintDevToken } from '../src/auth/index.js';
import { DEV_DOMAIN, PEER_DOMAIN, devPkiSettings, ensureDevPki } from '../src/pki/index.js';
import { dovecotPaths } from '../src/store/index.js';
import { benchRoot, buildDistIfStale } from './bench-gateway.js';
import { type PostfixInstance, ensurePostfix, startPostfix } from './postfix.js';
import {
  addSocketInodes,
  processesMentioning,
  type RunningGateway,
  socketStates,
  startSoakGateway,
} from './soak-gateway.js';
import { loadAverage, median, percentiles, processTreeCpuMs } from './stats.js';

/**
 * `npm run bench -- vs-postfix [--quick]` (issue #12, item 5): the gateway against Postfix 3.7
 * configured the same way (BENCHMARKS.md), on loopback, one nodemailer client for both, runs
 * interleaved gateway/Postfix per configuration. Delivered means in the Dovecot mailbox (files in
 * the maildir), or for the relay accepted by the sink operator (its log); CPU per message is read
 * from /proc for the gateway's process tree (with its Redis) and every Postfix daemon (exited ones
 * included, through the master's children times); the Dovecot both deliver to is on neither side.
 */

export interface VsPostfixOptions {
  readonly quick: boolean;
  /** Only the relay configurations (`--relay`), or only the MX ones. */
  readonly only?: 'mx' | 'relay';
  /** Only the configurations whose name contains this text (`--scenario <text>`). */
  readonly scenario?: string;
  /**
   * A V8 CPU profile of the gateway (`--cpu-prof <dir>`): written into `dir` when it stops, to be
   * opened in Chrome's DevTools; profiling costs CPU, so its figures are not the gateway's own.
   */
  readonly cpuProfileDir?: string;
  readonly say: (line: string) => void;
}

type Side = 'gateway' | 'postfix';

interface Scenario {
  readonly name: string;
  readonly kind: 'mx' | 'relay';
  readonly sizeBytes: number;
  /** Client workers sending at once. */
  readonly connections: number;
  /** A new connection (and TLS handshake) for every message, or one kept per worker. */
  readonly reuse: boolean;
  readonly messages: number;
}

interface RunResult {
  readonly deliveredPerSecond: number;
  readonly latencies: number[];
  readonly cpuMsPerMessage: number;
  /** Relay runs: most connections open at once from the relaying side to the sink. */
  readonly peakRelayConnections?: number;
}

/**
 * Established TCP connections from the processes `pids` (their sockets) to `port` on loopback:
 * the relay's connections to the sink, whichever side relays.
 */
export function connectionsTo(pids: readonly number[], port: number): number {
  const inodes = new Set<string>();
  for (const pid of pids) addSocketInodes(pid, inodes); // a process that exited meanwhile holds none
  const remote = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  let n = 0;
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const cols = line.trim().split(/\s+/);
    if (cols[3] === '01' && cols[2]?.endsWith(remote) && inodes.has(cols[9]!)) n += 1;
  }
  return n;
}

/** Every live descendant of `root`, itself included (Postfix's smtp clients are the master's children). */
function processTree(root: number): number[] {
  const parents = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      parents.set(ppid, [...(parents.get(ppid) ?? []), Number(entry)]);
    } catch {
      // exited meanwhile
    }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length > 0) {
    const pid = stack.pop()!;
    out.push(pid);
    stack.push(...(parents.get(pid) ?? []));
  }
  return out;
}

/** Targets of issue #12: delivered msg/s ≥ 1.2× Postfix, CPU per message ≤ 1.0× Postfix. */
export const TARGET_THROUGHPUT_RATIO = 1.2;
export const TARGET_CPU_RATIO = 1.0;
/** A full run stays under 10 minutes: no new pair is started past this. */
const BUDGET_MS = 9 * 60_000;
/** Longest wait for the last message of a run to reach the store. */
const DRAIN_TIMEOUT_MS = 120_000;
/** A measured run lasts about this long for the slower side (its count is at most the scenario's). */
const RUN_SECONDS = (quick: boolean) => (quick ? 3 : 12);
const MIN_MESSAGES = (quick: boolean) => (quick ? 20 : 50);

export function scenarios(quick: boolean): Scenario[] {
  const small = quick ? 40 : 300;
  const large = quick ? 20 : 80;
  const s = (
    name: string,
    kind: 'mx' | 'relay',
    kib: number,
    connections: number,
    reuse: boolean,
    messages: number,
  ): Scenario => ({ name, kind, sizeBytes: kib * 1024, connections, reuse, messages });
  return [
    s('mx 8 KiB, 4 connections reused', 'mx', 8, 4, true, small),
    s('mx 8 KiB, 20 connections reused', 'mx', 8, 20, true, small),
    s('mx 8 KiB, 20 workers, new connection per message', 'mx', 8, 20, false, small),
    s('mx 256 KiB, 4 connections reused', 'mx', 256, 4, true, large),
    s('mx 256 KiB, 20 connections reused', 'mx', 256, 20, true, large),
    s('mx 256 KiB, 20 workers, new connection per message', 'mx', 256, 20, false, large),
    s('relay 8 KiB, 4 client connections reused', 'relay', 8, 4, true, small),
    s('relay 8 KiB, 20 client connections reused', 'relay', 8, 20, true, small),
  ];
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** SHA-256 fingerprint of a PEM certificate in Postfix's notation (AA:BB:…). */
function fingerprint(pemFile: string): string {
  const out = execFileSync('openssl', ['x509', '-in', pemFile, '-noout', '-fingerprint', '-sha256'], {
    encoding: 'utf8',
  });
  return out.trim().split('=')[1]!;
}

/** Lines of a log file appended since the last call (the sink's maillog). */
class LogTail {
  #offset = 0;
  constructor(readonly file: string) {}
  read(): string {
    if (!existsSync(this.file)) return '';
    const fd = openSync(this.file, 'r');
    try {
      const size = fstatSync(fd).size;
      if (size <= this.#offset) return '';
      const buf = Buffer.alloc(size - this.#offset);
      readSync(fd, buf, 0, buf.length, this.#offset);
      const text = buf.toString('utf8');
      const end = text.lastIndexOf('\n') + 1; // only whole lines
      this.#offset += Buffer.byteLength(text.slice(0, end));
      return text.slice(0, end);
    } finally {
      closeSync(fd);
    }
  }
}

export async function runVsPostfix({
  quick,
  only,
  scenario: named,
  cpuProfileDir,
  say,
}: VsPostfixOptions): Promise<boolean> {
  const started = Date.now();
  await ensurePostfix(say);
  buildDistIfStale();
  const root = benchRoot('vs-postfix');
  const pkiDir = path.join(root, 'pki');
  const pki = (f: string) => path.join(pkiDir, f);
  const instances: PostfixInstance[] = [];
  let gw: RunningGateway | undefined;
  let cleaned = false;
  const cleanup = async () => {
    if (cleaned) return;
    cleaned = true;
    if (gw && gw.child.exitCode === null && gw.child.signalCode === null) {
      gw.expectExit();
      gw.child.kill('SIGTERM');
      await Promise.race([gw.exited, new Promise((r) => setTimeout(r, 30_000))]);
      if (gw.child.exitCode === null && gw.child.signalCode === null) gw.child.kill('SIGKILL');
    }
    for (const instance of instances) await instance.stop().catch(() => undefined);
    // Redis or Dovecot of a gateway that had to be killed: ours, found by our folder.
    for (const pid of processesMentioning(root)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    rmSync(root, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals) => {
    say(`vs-postfix: ${signal}, cleaning up`);
    void cleanup().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await ensureDevPki(pkiDir);
    const caFile = path.join(root, 'ca-bundle.pem');
    writeFileSync(
      caFile,
      ['root', 'org', 'pp'].map((n) => readFileSync(pki(`ca/${n}.crt`), 'utf8')).join(''),
    );
    const tlsServer = (leaf: string) => ({
      smtpd_tls_security_level: 'encrypt',
      smtpd_tls_ask_ccert: 'yes',
      smtpd_tls_req_ccert: 'yes',
      smtpd_tls_CAfile: caFile,
      smtpd_tls_chain_files: `${pki(`${leaf}.key`)}, ${pki(`${leaf}.chain.pem`)}`,
      smtpd_tls_protocols: '>=TLSv1.2',
      smtpd_tls_mandatory_protocols: '>=TLSv1.2',
      smtpd_tls_fingerprint_digest: 'sha256',
      smtpd_tls_session_cache_database: '',
    });
    const peerCcert = `${fingerprint(pki('peer-trusted.crt'))} peer_only\n`;

    // The sink operator: presents peer-trusted, requires and verifies our client certificate,
    // discards what it accepts (status=sent in its log).
    const sinkPort = await freePort();
    const sink = await startPostfix({
      dir: path.join(root, 'postfix-sink'),
      listener: { port: sinkPort },
      main: {
        ...tlsServer('peer-trusted'),
        relay_domains: PEER_DOMAIN,
        relay_recipient_maps: '',
        relay_transport: 'discard:sink',
        smtpd_relay_restrictions: 'reject_unauth_destination',
        smtpd_recipient_restrictions: `check_ccert_access texthash:${path.join(root, 'postfix-sink', 'etc', 'ccert')}, reject`,
      },
      files: { ccert: `${fingerprint(pki('gateway.crt'))} OK\n` },
    });
    instances.push(sink);
    const sinkLog = new LogTail(sink.paths.maillog);

    // The gateway: dist/main.js in a child, embedded Redis and Dovecot, relay routed to the sink.
    // The relay's client authenticates with a Pro Santé Connect-like token (XOAUTH2), as doctors'
    // software does: one signature check, where a password would cost an scrypt per connection
    // (Postfix's relay client is known by its certificate fingerprint, at no cost either).
    const team = `bench.relay.${randomUUID().slice(0, 6)}@${DEV_DOMAIN}`;
    const configFile = path.join(root, 'gateway.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        dataDir: path.join(root, 'var'),
        ...devPkiSettings(pkiDir),
        // Postfix's smtpd has no such ceiling at 20 clients (anvil: 50 per client): the gateway's
        // limits are raised likewise, and its open sockets are printed after each configuration.
        smtp: {
          mx: { host: '127.0.0.1', port: 0, maxConnections: 1000, maxPreauthPerSource: 100 },
          submission: { host: '127.0.0.1', port: 0, tlsPort: 0 },
        },
        imap: { host: '127.0.0.1', port: 0, tlsPort: 0 },
        relay: { routes: { [PEER_DOMAIN]: [{ host: '127.0.0.1', port: sinkPort }] } },
        metrics: { enabled: false },
        admin: { host: '127.0.0.1', port: 0 },
        log: { level: 'info' },
      }),
      { mode: 0o600 },
    );
    say(
      `vs-postfix: starting the gateway (dist/main.js, embedded Redis and Dovecot)${cpuProfileDir ? `, CPU profile into ${cpuProfileDir}` : ''}`,
    );
    gw = await startSoakGateway(configFile, undefined, {
      entry: 'dist',
      ...(cpuProfileDir ? { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${path.resolve(cpuProfileDir)}`] } : {}),
    });
    const gateway = gw;
    const admin = async (method: string, url: string, body: unknown, expect: number) => {
      const res = await fetch(`http://127.0.0.1:${gateway.ports.admin}${url}`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
      const text = await res.text();
      if (res.status !== expect) throw new Error(`admin ${method} ${url}: ${res.status} ${text}`);
    };
    await admin('POST', '/v1/bals', { address: team, type: 'PER', owner: '810000000001' }, 201);
    const accessToken = await mintDevToken({ pkiDir, subject: '810000000001', ttlSeconds: 3600 });

    // The same Dovecot for Postfix: its LMTP socket, opened to Postfix's group for the benchmark.
    const store = dovecotPaths(await embeddedStoreDir(path.join(root, 'var')));
    execFileSync('chgrp', ['postfix', store.lmtpSocket]);
    chmodSync(store.lmtpSocket, 0o660);
    const maildir = (address: string) => {
      const [local, domain] = address.split('@') as [string, string];
      return path.join(store.mailDir, domain, local, 'Maildir');
    };

    const mxPort = await freePort();
    const mxDir = path.join(root, 'postfix-mx');
    const postfixMx = await startPostfix({
      dir: mxDir,
      listener: { port: mxPort },
      main: {
        ...tlsServer('gateway'),
        smtpd_restriction_classes: 'peer_only',
        // The peer's certificate, for its own domain only, as the gateway's whitelist does.
        peer_only: `check_sender_access regexp:${path.join(mxDir, 'etc', 'peer-sender')}, reject`,
        smtpd_relay_restrictions: 'reject_unauth_destination',
        smtpd_recipient_restrictions: `check_ccert_access texthash:${path.join(mxDir, 'etc', 'ccert')}, reject`,
        virtual_mailbox_domains: DEV_DOMAIN,
        virtual_mailbox_maps: `regexp:${path.join(mxDir, 'etc', 'mailboxes')}`,
        virtual_transport: `lmtp:unix:${store.lmtpSocket}`,
        message_size_limit: String(50 * 1024 * 1024),
      },
      files: {
        ccert: peerCcert,
        'peer-sender': `/@${PEER_DOMAIN.replaceAll('.', '\\.')}$/ OK\n`,
        mailboxes: `/^pf\\.[a-z0-9.-]+@${DEV_DOMAIN.replaceAll('.', '\\.')}$/ OK\n`,
      },
    });
    instances.push(postfixMx);

    const relayPort = await freePort();
    const relayDir = path.join(root, 'postfix-relay');
    const postfixRelay = await startPostfix({
      dir: relayDir,
      listener: { port: relayPort },
      main: {
        ...tlsServer('gateway'),
        relay_domains: PEER_DOMAIN,
        relay_recipient_maps: '',
        smtpd_relay_restrictions: `check_ccert_access texthash:${path.join(relayDir, 'etc', 'ccert')}, reject`,
        transport_maps: `texthash:${path.join(relayDir, 'etc', 'transport')}`,
        smtp_tls_security_level: 'secure',
        smtp_tls_secure_cert_match: 'localhost',
        smtp_tls_chain_files: `${pki('gateway.key')}, ${pki('gateway.chain.pem')}`,
        smtp_tls_CAfile: caFile,
        smtp_tls_protocols: '>=TLSv1.2',
        smtp_tls_mandatory_protocols: '>=TLSv1.2',
        // The strongest Postfix: one handshake per connection, not per message (tlsproxy).
        smtp_tls_connection_reuse: 'yes',
        smtp_tls_session_cache_database: '',
        message_size_limit: String(50 * 1024 * 1024),
      },
      files: {
        ccert: `${fingerprint(pki('peer-trusted.crt'))} OK\n`,
        transport: `${PEER_DOMAIN} relay:[127.0.0.1]:${sinkPort}\n`,
      },
    });
    instances.push(postfixRelay);

    const tls = {
      key: readFileSync(pki('peer-trusted.key')),
      cert: readFileSync(pki('peer-trusted.chain.pem')),
      ca: readFileSync(pki('ca/root.crt')),
      servername: 'localhost',
    };
    const transportFor = (side: Side, scenario: Scenario) => {
      const relay = scenario.kind === 'relay';
      const port =
        side === 'gateway'
          ? relay
            ? gateway.ports.submission
            : gateway.ports.mx
          : relay
            ? relayPort
            : mxPort;
      return nodemailer.createTransport({
        ...(scenario.reuse ? { pool: true, maxConnections: 1, maxMessages: Infinity } : {}),
        host: '127.0.0.1',
        port,
        secure: false,
        requireTLS: true,
        name: 'mx.peer.mssante.test',
        ...(relay && side === 'gateway'
          ? { auth: { type: 'OAuth2' as const, user: team, accessToken } }
          : {}),
        tls,
      });
    };
    // The gateway with its Redis, without the shared Dovecot; Postfix: the master of the instance
    // serving the scenario, its daemons, live or exited.
    const cpuOf = (side: Side, scenario: Scenario) =>
      side === 'gateway'
        ? processTreeCpuMs(gateway.pid, /^dovecot$/)
        : processTreeCpuMs((scenario.kind === 'relay' ? postfixRelay : postfixMx).master.pid!);

    let runNo = 0;
    const runOnce = async (side: Side, scenario: Scenario, messages: number): Promise<RunResult> => {
      runNo += 1;
      const tag = `${side === 'gateway' ? 'gw' : 'pf'}.r${runNo}.${randomUUID().slice(0, 6)}`;
      const relay = scenario.kind === 'relay';
      const to = relay ? `${tag}@${PEER_DOMAIN}` : `${tag}@${DEV_DOMAIN}`;
      const from = relay && side === 'gateway' ? team : `labo@${PEER_DOMAIN}`;
      if (!relay && side === 'gateway')
        await admin('POST', '/v1/bals', { address: to, type: 'PER', owner: '810000000001' }, 201);
      const body = 'Compte rendu de biologie.\r\n'.repeat(Math.max(1, Math.floor(scenario.sizeBytes / 27)));
      const dir = maildir(to);
      let sinkCount = 0;
      const delivered = () => {
        if (relay) {
          for (const line of sinkLog.read().split('\n'))
            if (line.includes(`to=<${to}>`) && line.includes('status=sent')) sinkCount += 1;
          return sinkCount;
        }
        let n = 0;
        for (const sub of ['new', 'cur']) {
          try {
            n += readdirSync(path.join(dir, sub)).length;
          } catch {
            // not created yet
          }
        }
        return n;
      };
      const transports = Array.from({ length: scenario.connections }, () => transportFor(side, scenario));
      const latencies: number[] = [];
      // Relay: how many connections the relaying side really holds to the sink under this load
      // (up to 20 per destination on both sides); sampled, so a short peak may be missed.
      let peak = 0;
      const relayer = side === 'gateway' ? gateway.pid : postfixRelay.master.pid!;
      const sampler = relay
        ? setInterval(() => {
            peak = Math.max(peak, connectionsTo(processTree(relayer), sinkPort));
          }, 100).unref()
        : undefined;
      const cpu0 = cpuOf(side, scenario);
      const t0 = performance.now();
      let next = 0;
      await Promise.all(
        transports.map(async (transport) => {
          for (let i = next++; i < messages; i = next++) {
            const s = performance.now();
            await transport.sendMail({
              envelope: { from, to: [to] },
              from,
              to,
              subject: `bench ${i}`,
              headers: { 'X-MSS-NIL': 'BENCH 1.0' },
              text: body,
            });
            latencies.push(performance.now() - s);
          }
        }),
      );
      transports.forEach((t) => t.close());
      let done = delivered();
      const deadline = Date.now() + DRAIN_TIMEOUT_MS;
      while (done < messages) {
        if (Date.now() > deadline)
          throw new Error(
            `${side}, ${scenario.name}: ${done}/${messages} delivered after ${DRAIN_TIMEOUT_MS} ms`,
          );
        await new Promise((r) => setTimeout(r, 10));
        done = delivered();
      }
      const seconds = (performance.now() - t0) / 1000;
      const cpu = cpuOf(side, scenario) - cpu0;
      clearInterval(sampler);
      if (done > messages)
        throw new Error(`${side}, ${scenario.name}: ${done} copies of ${messages} messages`);
      return {
        deliveredPerSecond: messages / seconds,
        latencies,
        cpuMsPerMessage: cpu / messages,
        ...(relay ? { peakRelayConnections: peak } : {}),
      };
    };

    const pairs = quick ? 1 : 3;
    say(
      `vs-postfix: ${quick ? 'quick' : 'full'} run, ${pairs} interleaved pair(s) (gateway, Postfix) per configuration; load ${loadAverage()}`,
    );
    say(
      '  gateway: its defaults (relay up to 20 connections per destination); Postfix 3.7 defaults (up to 20 deliveries per destination, cached LMTP/SMTP connections, one fsync per message), relay with smtp_tls_connection_reuse = yes',
    );
    let allPass = true;
    const table: string[] = [];
    const chosen = scenarios(quick).filter(
      (c) => (only === undefined || c.kind === only) && (named === undefined || c.name.includes(named)),
    );
    if (chosen.length === 0) throw new Error(`vs-postfix: no configuration named like ${named}`);
    for (const scenario of chosen) {
      // Warm-up of both sides (connections, caches, JIT), not measured; its rates size the runs
      // (the same count for both sides) so that the whole benchmark stays within its budget.
      const warm = Math.min(10, scenario.messages);
      const slowest = Math.min(
        (await runOnce('gateway', scenario, warm)).deliveredPerSecond,
        (await runOnce('postfix', scenario, warm)).deliveredPerSecond,
      );
      const messages = Math.min(
        scenario.messages,
        Math.max(MIN_MESSAGES(quick), Math.round(slowest * RUN_SECONDS(quick))),
      );
      const results: Record<Side, RunResult[]> = { gateway: [], postfix: [] };
      const loads: string[] = [];
      for (let pair = 0; pair < pairs; pair += 1) {
        if (pair > 0 && Date.now() - started > BUDGET_MS) {
          say(`  (time budget reached: ${pair} pair(s) for ${scenario.name})`);
          break;
        }
        loads.push(loadAverage());
        results.gateway.push(await runOnce('gateway', scenario, messages));
        results.postfix.push(await runOnce('postfix', scenario, messages));
      }
      const n = results.gateway.length;
      const rate = (s: Side) => median(results[s].map((r) => r.deliveredPerSecond));
      const cpu = (s: Side) => median(results[s].map((r) => r.cpuMsPerMessage));
      const lat = (s: Side) => percentiles(results[s].flatMap((r) => r.latencies));
      const rateRatio = median(
        Array.from(
          { length: n },
          (_, i) => results.gateway[i]!.deliveredPerSecond / results.postfix[i]!.deliveredPerSecond,
        ),
      );
      const cpuRatio = median(
        Array.from(
          { length: n },
          (_, i) => results.gateway[i]!.cpuMsPerMessage / results.postfix[i]!.cpuMsPerMessage,
        ),
      );
      const ratePass = rateRatio >= TARGET_THROUGHPUT_RATIO;
      const cpuPass = cpuRatio <= TARGET_CPU_RATIO;
      allPass &&= ratePass && cpuPass;
      const g = lat('gateway');
      const p = lat('postfix');
      const block = [
        `${scenario.name}: ${messages} messages × ${n} pair(s); load before each pair ${loads.join(' | ')}`,
        `  delivered msg/s   gateway ${rate('gateway').toFixed(1)}  postfix ${rate('postfix').toFixed(1)}  ratio ${rateRatio.toFixed(2)} (target ≥ ${TARGET_THROUGHPUT_RATIO}) ${ratePass ? 'PASS' : 'FAIL'}`,
        `  250 latency ms    gateway p50 ${g.p50.toFixed(0)} p99 ${g.p99.toFixed(0)}  postfix p50 ${p.p50.toFixed(0)} p99 ${p.p99.toFixed(0)}`,
        `  CPU ms/message    gateway ${cpu('gateway').toFixed(1)}  postfix ${cpu('postfix').toFixed(1)}  ratio ${cpuRatio.toFixed(2)} (target ≤ ${TARGET_CPU_RATIO}) ${cpuPass ? 'PASS' : 'FAIL'}`,
      ];
      if (scenario.kind === 'relay') {
        const peaks = (side: Side) => results[side].map((r) => r.peakRelayConnections ?? 0).join('/');
        block.push(
          `  connections to the sink at most (per run)  gateway ${peaks('gateway')}  postfix ${peaks('postfix')}`,
        );
      }
      block.push(`  gateway sockets after the runs ${JSON.stringify(socketStates(gateway.pid))}`);
      block.forEach(say);
      table.push(
        `| ${scenario.name} | ${rate('gateway').toFixed(1)} / ${rate('postfix').toFixed(1)} = ${rateRatio.toFixed(2)} ${ratePass ? 'PASS' : 'FAIL'} | ${g.p50.toFixed(0)}/${g.p99.toFixed(0)} vs ${p.p50.toFixed(0)}/${p.p99.toFixed(0)} | ${cpu('gateway').toFixed(1)} / ${cpu('postfix').toFixed(1)} = ${cpuRatio.toFixed(2)} ${cpuPass ? 'PASS' : 'FAIL'} |`,
      );
    }
    say('');
    say(
      '| configuration | delivered msg/s gateway / Postfix = ratio | 250 latency p50/p99 ms, gateway vs Postfix | CPU ms/msg gateway / Postfix = ratio |',
    );
    say('|---|---|---|---|');
    table.forEach(say);
    say(
      `vs-postfix: ${allPass ? 'PASS' : 'FAIL'} (targets: msg/s ≥ ${TARGET_THROUGHPUT_RATIO}× Postfix, CPU ≤ ${TARGET_CPU_RATIO}×), ${((Date.now() - started) / 1000).toFixed(0)} s, load ${loadAverage()}`,
    );
    return allPass;
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
