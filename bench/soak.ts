import { randomUUID } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { setTimeout as sleep } from 'node:timers/promises';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { mintDevToken } from '../src/auth/index.js';
import { benchRoot } from './bench-gateway.js';
import {
  type RunningGateway,
  fdCount,
  processesMentioning,
  rssMiB,
  socketStates,
  startSoakGateway,
  writeSoakConfig,
} from './soak-gateway.js';
import {
  FUZZ_CASES,
  type FuzzTally,
  type Listener,
  connectCloseStorm,
  fuzzSession,
  greetingMs,
  pool,
  slowLoris,
} from './soak-traffic.js';
import { percentiles } from './stats.js';

/**
 * `npm run soak [-- --seconds N] [-- --short] [-- --issue] [-- --keep]`: hostile traffic against a gateway this
 * script starts (issue #11 item 10), loopback only, bounded in time: N seconds of traffic (default
 * 150, `--short` 60 with small counts, at most 240), plus the start-up, the restarts of the kill
 * loop, at most 60 s for the delivery count and the stop: about 5 min in all on an idle machine.
 * `--issue` runs at the issue's scale: 20,000 aborted sessions per listener (connect-close storm,
 * plus the fuzzing) and 10,000 idle connections from one address against MX, submission and IMAPS
 * in turn, within at most 900 s of traffic (default 840); what a loaded machine did not reach in
 * time is printed as reached/asked.
 * `--keep` keeps the folder (spool, journal). Phases: fuzzing of every listener, a connect-close storm, slow-loris from
 * 127.0.0.2 while a trusted peer delivers from 127.0.0.3, brute force from 127.0.0.2 while the
 * owner logs in from 127.0.0.1, and a kill -9 loop under load. Prints sessions, crashes, hangs,
 * fds and RSS before/after, legitimate latency p50/p99, lost and duplicated messages. It reports
 * defects rather than stopping at them: that is its purpose.
 */

const args = process.argv.slice(2);
const short = args.includes('--short');
const issue = args.includes('--issue');
const secondsArg = args.indexOf('--seconds');
/** Seconds of traffic (start-up, restarts, the delivery count and the stop come on top). */
const budgetSeconds = Math.min(
  issue ? 900 : 240,
  secondsArg >= 0 ? Number(args[secondsArg + 1]) : issue ? 840 : short ? 60 : 150,
);
if (!Number.isFinite(budgetSeconds) || budgetSeconds < 20) throw new Error('--seconds takes a number ≥ 20');
/** Longest wait for acknowledged messages to reach the mailbox after the last restart. */
const DELIVERY_WAIT_MS = 60_000;

const ATTACKER = '127.0.0.2';
const PEER = '127.0.0.3';
const OWNER_ADDRESS = '127.0.0.1';
const STRUCTURE = '41690000001';
const DOCTOR = '810000000001';
const scale = short ? 0.15 : 1;
const counts = {
  fuzzPerCase: Math.max(3, Math.round(25 * scale)),
  storm: issue ? 20_000 : Math.max(100, Math.round(2000 * scale)),
  loris: issue ? 10_000 : Math.max(300, Math.round(2000 * scale)),
  peerMessages: Math.max(10, Math.round(40 * scale)),
  kills: short ? 2 : 4,
};
/** Share of the traffic budget per phase. */
const share = issue
  ? { fuzz: 0.08, storm: 0.6, loris: 0.12, brute: 0.1, kill: 0.1 }
  : { fuzz: 0.3, storm: 0.1, loris: 0.15, brute: 0.15, kill: 0.3 };

const root = benchRoot('soak');
const pkiDir = path.join(root, 'pki');
const configFile = writeSoakConfig(root);
const lines: string[] = [];
const say = (line: string) => {
  lines.push(line);
  console.log(line);
};
let crashes = 0;
/** The gateway process now running, for the final clean-up. */
let current: RunningGateway | undefined;

const team = `soak.team.${randomUUID().slice(0, 6)}@op.mssante.test`;
const doctor = `soak.dr.${randomUUID().slice(0, 6)}@op.mssante.test`;
const secret = `soak-secret-${randomUUID()}`;

async function admin(gw: RunningGateway, method: string, url: string, body: unknown): Promise<number> {
  const res = await fetch(`http://127.0.0.1:${gw.ports.admin}${url}`, {
    method,
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  await res.arrayBuffer();
  return res.status;
}

function pem(file: string): Buffer {
  return readFileSync(path.join(pkiDir, file));
}

function peerTransport(port: number) {
  return nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    localAddress: PEER,
    name: 'mx.peer.mssante.test',
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 20_000,
    tls: {
      key: pem('peer-trusted.key'),
      cert: pem('peer-trusted.chain.pem'),
      ca: pem('ca/root.crt'),
      servername: 'localhost',
    },
  });
}

async function deliver(
  port: number,
  subject: string,
  messageId?: string,
): Promise<{ ok: boolean; ms: number; error?: string }> {
  const t0 = performance.now();
  const transport = peerTransport(port);
  try {
    await transport.sendMail({
      envelope: { from: 'labo@peer.mssante.test', to: [doctor] },
      from: 'labo@peer.mssante.test',
      to: doctor,
      subject,
      ...(messageId ? { messageId } : {}),
      text: 'Compte rendu.\r\n',
    });
    return { ok: true, ms: Math.round(performance.now() - t0) };
  } catch (err) {
    return { ok: false, ms: Math.round(performance.now() - t0), error: (err as Error).message.slice(0, 80) };
  } finally {
    transport.close();
  }
}

/** AUTH PLAIN on submission from `localAddress` (nodemailer verify): the reply code, 0 when none. */
async function smtpLogin(port: number, localAddress: string, pass: string): Promise<number> {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    requireTLS: true,
    localAddress,
    auth: { user: team, pass },
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 15_000,
    tls: { ca: pem('ca/root.crt'), servername: 'localhost' },
  });
  try {
    await transport.verify();
    return 235;
  } catch (err) {
    return (err as { responseCode?: number }).responseCode ?? 0;
  } finally {
    transport.close();
  }
}

/** AUTHENTICATE PLAIN on IMAPS from `localAddress`: the tagged status word and code. */
function imapLogin(port: number, localAddress: string, pass: string): Promise<string> {
  return new Promise((resolve) => {
    const s = tls.connect({
      socket: net.connect({ host: '127.0.0.1', port, localAddress }),
      ca: pem('ca/root.crt'),
      servername: 'localhost',
    });
    let buf = '';
    const timer = setTimeout(() => finish('timeout'), 15_000);
    const finish = (r: string) => {
      clearTimeout(timer);
      s.destroy();
      resolve(r);
    };
    s.on('error', () => finish('error'));
    s.once('secureConnect', () => {
      const b64 = Buffer.from(`${team}\0${team}\0${pass}`).toString('base64');
      s.write(`a1 AUTHENTICATE PLAIN ${b64}\r\n`);
    });
    s.on('data', (d: Buffer) => {
      buf += d.toString('latin1');
      const m = /^a1 (OK|NO|BAD)( \[[A-Z]+\])?/m.exec(buf);
      if (m) finish(`${m[1]}${m[2] ?? ''}`);
    });
  });
}

/** Runs a login and times it: ok when its reply is `okReply`. */
async function timed(
  login: () => Promise<string>,
  okReply: string,
): Promise<{ ok: boolean; ms: number; error?: string }> {
  const t0 = performance.now();
  const r = await login();
  const ms = Math.round(performance.now() - t0);
  return r === okReply ? { ok: true, ms } : { ok: false, ms, error: `reply ${r}` };
}

function measure(gw: RunningGateway) {
  return { fds: fdCount(gw.pid), rss: rssMiB(gw.pid), sockets: socketStates(gw.pid) };
}

function spoolTempFiles(): number {
  const dir = path.join(root, 'var', 'spool', 'tmp');
  return existsSync(dir) ? readdirSync(dir).length : 0;
}

async function settle(gw: RunningGateway, seconds: number) {
  await sleep(seconds * 1000);
  return measure(gw);
}

async function main(): Promise<void> {
  const started = Date.now();
  say(`soak: ${short ? 'short' : 'full'} run, ${budgetSeconds} s of traffic, folder ${root}`);
  let gw = await startSoakGateway(configFile);
  say(`gateway pid ${gw.pid} ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  const watchCrash = (g: RunningGateway) => {
    current = g;
    void g.exited.then(() => (crashes += g.crashed() ? 1 : 0));
  };
  watchCrash(gw);

  if ((await admin(gw, 'POST', '/v1/bals', { address: team, type: 'ORG', owner: STRUCTURE })) !== 201)
    throw new Error('could not create the ORG mailbox');
  if ((await admin(gw, 'POST', '/v1/bals', { address: doctor, type: 'PER', owner: DOCTOR })) !== 201)
    throw new Error('could not create the PER mailbox');
  if ((await admin(gw, 'PUT', `/v1/bals/${encodeURIComponent(team)}/secret`, { secret })) !== 204)
    throw new Error('could not set the secret');
  // Warm-up, then the baseline.
  await deliver(gw.ports.mx, 'warm-up');
  await smtpLogin(gw.ports.submission, OWNER_ADDRESS, secret);
  const before = await settle(gw, 2);
  const budgetMs = budgetSeconds * 1000;
  say(
    `baseline: fds ${before.fds}, RSS ${before.rss.toFixed(0)} MiB, sockets ${JSON.stringify(before.sockets)}`,
  );

  // 1. Fuzzing of each listener.
  const listeners: Listener[] = [
    { name: 'mx', port: gw.ports.mx, protocol: 'smtp', tls: false },
    { name: 'submission', port: gw.ports.submission, protocol: 'smtp', tls: false },
    { name: 'submissionTls', port: gw.ports.submissionTls, protocol: 'smtp', tls: true },
    { name: 'imap', port: gw.ports.imap, protocol: 'imap', tls: false },
    { name: 'imapTls', port: gw.ports.imapTls, protocol: 'imap', tls: true },
  ];
  const fuzzDeadline = Date.now() + budgetMs * share.fuzz;
  const cases = Object.keys(FUZZ_CASES);
  const tallies = new Map<string, FuzzTally>();
  const jobs = listeners.flatMap((l) =>
    cases.flatMap((c) => Array.from({ length: counts.fuzzPerCase }, () => ({ l, c }))),
  );
  jobs.sort(() => Math.random() - 0.5);
  await pool(jobs.length, 40, fuzzDeadline, async (i) => {
    const { l, c } = jobs[i]!;
    const t = tallies.get(l.name) ?? { sessions: 0, refused: 0, hangs: 0, byCase: {} };
    tallies.set(l.name, t);
    const r = await fuzzSession(l, c, ATTACKER);
    t.sessions += 1;
    if (r.refused) t.refused += 1;
    if (r.hang) {
      t.hangs += 1;
      t.byCase[c] = (t.byCase[c] ?? 0) + 1;
    }
  });
  say(
    'fuzz (random bytes, long lines, bare CR/LF, pipelined garbage, huge/unterminated literals, bad base64, TLS garbage, half-open):',
  );
  for (const l of listeners) {
    const t = tallies.get(l.name) ?? { sessions: 0, refused: 0, hangs: 0, byCase: {} };
    const hangs = Object.entries(t.byCase)
      .map(([c, n]) => `${c} ${n}`)
      .join(', ');
    say(
      `  ${l.name.padEnd(14)} sessions ${t.sessions}, refused ${t.refused}, hangs ${t.hangs}${hangs ? ` (${hangs})` : ''}`,
    );
  }

  // 2. Connect-close storm.
  // Each listener has its share of the time: a slow one does not starve the next (IMAP, last, used
  // to get none).
  const stormed: string[] = [];
  const stormStarted = Date.now();
  for (const [i, l] of listeners.entries()) {
    const slot = (stormStarted + budgetMs * share.storm - Date.now()) / (listeners.length - i);
    const t0 = Date.now();
    const n = await connectCloseStorm(l, counts.storm, Date.now() + slot);
    const fuzzed = tallies.get(l.name)?.sessions ?? 0;
    stormed.push(
      `${l.name} ${n}/${counts.storm} in ${((Date.now() - t0) / 1000).toFixed(0)} s (sessions with the fuzz: ${n + fuzzed})`,
    );
  }
  say(`connect-close storm from 127.0.0.4: ${stormed.join(', ')}`);
  const afterHostile = await settle(gw, 5);
  say(
    `after fuzz and storm (+5 s): fds ${afterHostile.fds} (baseline ${before.fds}), RSS ${afterHostile.rss.toFixed(0)} MiB (baseline ${before.rss.toFixed(0)}), sockets ${JSON.stringify(afterHostile.sockets)}, spool temp files ${spoolTempFiles()}`,
  );

  // 3. Slow-loris from one address while another is served: a trusted peer delivers to MX, the
  // owner logs in on submission and IMAPS.
  const lorisTargets: Array<{
    l: Listener;
    serve: () => Promise<{ ok: boolean; ms: number; error?: string }>;
  }> = [
    {
      l: { name: 'mx', port: gw.ports.mx, protocol: 'smtp', tls: false },
      serve: () => deliver(gw.ports.mx, `during loris ${randomUUID()}`),
    },
    {
      l: { name: 'submission', port: gw.ports.submission, protocol: 'smtp', tls: false },
      serve: () =>
        timed(async () => String(await smtpLogin(gw.ports.submission, OWNER_ADDRESS, secret)), '235'),
    },
    {
      l: { name: 'imapTls', port: gw.ports.imapTls, protocol: 'imap', tls: true },
      serve: () => timed(() => imapLogin(gw.ports.imapTls, OWNER_ADDRESS, secret), 'OK'),
    },
  ];
  for (const [i, { l, serve }] of lorisTargets.entries()) {
    const lorisDeadline = Date.now() + (budgetMs * share.loris) / lorisTargets.length;
    const loris = await slowLoris(l, counts.loris, ATTACKER);
    const legit = l.name === 'mx' ? PEER : OWNER_ADDRESS;
    const greet = await greetingMs(
      l.port,
      legit,
      10_000,
      l.tls ? { ca: pem('ca/root.crt'), servername: 'localhost' } : undefined,
    );
    const results: Array<{ ok: boolean; ms: number; error?: string }> = [];
    for (let n = 0; n < counts.peerMessages && (n < 3 || Date.now() < lorisDeadline); n++)
      results.push(await serve());
    const stillOpen = loris.close();
    const ok = results.filter((r) => r.ok);
    const lat = percentiles(ok.map((r) => r.ms));
    const firstError = results.find((r) => !r.ok)?.error;
    say(
      `slow-loris ${i + 1}/${lorisTargets.length}: ${loris.opened}/${counts.loris} idle connections from ${ATTACKER} to ${l.name} (${stillOpen} still open at the end); ${l.name === 'mx' ? 'trusted peer' : 'owner'} from ${legit}: greeting ${greet < 0 ? 'none within 10 s' : `${greet} ms`}, ${l.name === 'mx' ? 'delivered' : 'logged in'} ${ok.length}/${results.length}, latency p50 ${lat.p50} ms p99 ${lat.p99} ms${firstError ? `, first error: ${firstError}` : ''}`,
    );
  }

  // 4. Brute force from one address while the owner logs in from another.
  const bruteDeadline = Date.now() + budgetMs * share.brute;
  let guesses = 0;
  const attackerReplies: Record<string, number> = {};
  const ownerResults: Array<{ ok: boolean; ms: number; what: string }> = [];
  const attacker = pool(1_000_000, 4, bruteDeadline, async (i) => {
    const wrong = `guess-${i}-${randomUUID()}`;
    const r =
      i % 2 === 0
        ? String(await smtpLogin(gw.ports.submission, ATTACKER, wrong))
        : await imapLogin(gw.ports.imapTls, ATTACKER, wrong);
    attackerReplies[r] = (attackerReplies[r] ?? 0) + 1;
    guesses += 1;
  });
  const owner = (async () => {
    await sleep(2_000); // let the attacker's failures pile up first
    for (let i = 0; Date.now() < bruteDeadline; i++) {
      const t0 = performance.now();
      const smtp = i % 2 === 0;
      const r = smtp
        ? String(await smtpLogin(gw.ports.submission, OWNER_ADDRESS, secret))
        : await imapLogin(gw.ports.imapTls, OWNER_ADDRESS, secret);
      ownerResults.push({
        ok: r === '235' || r === 'OK',
        ms: Math.round(performance.now() - t0),
        what: `${smtp ? 'smtp' : 'imap'} ${r}`,
      });
      await sleep(300);
    }
  })();
  await Promise.all([attacker, owner]);
  const ownerOk = ownerResults.filter((r) => r.ok);
  const ownerLat = percentiles(ownerOk.map((r) => r.ms));
  const ownerRefusals = [...new Set(ownerResults.filter((r) => !r.ok).map((r) => r.what))].join(', ');
  say(
    `brute force: ${guesses} wrong secrets from ${ATTACKER} (replies ${JSON.stringify(attackerReplies)}); owner from ${OWNER_ADDRESS}: ${ownerOk.length}/${ownerResults.length} logins ok, latency p50 ${ownerLat.p50} ms p99 ${ownerLat.p99} ms${ownerRefusals ? `, refused: ${ownerRefusals}` : ''}`,
  );
  const beforeKill = await settle(gw, 3);
  say(
    `before the kill loop: fds ${beforeKill.fds} (baseline ${before.fds}), RSS ${beforeKill.rss.toFixed(0)} MiB (baseline ${before.rss.toFixed(0)}), sockets ${JSON.stringify(beforeKill.sockets)}, spool temp files ${spoolTempFiles()}, crashes so far ${crashes}`,
  );

  // 5. kill -9 loop under load.
  const killDeadline = Date.now() + budgetMs * share.kill;
  const acked = new Set<string>();
  let attempts = 0;
  let sending = true;
  let port = gw.ports.mx;
  const senders = Array.from({ length: 3 }, async (_, lane) => {
    for (let n = 0; sending; n++) {
      const id = `<soak-${lane}-${n}-${randomUUID()}@peer.mssante.test>`;
      attempts += 1;
      const r = await deliver(port, `kill loop ${lane}-${n}`, id);
      if (r.ok) acked.add(id);
      else await sleep(200);
    }
  });
  const restarts: string[] = [];
  let kills = 0;
  const perRound = Math.max(4_000, (killDeadline - Date.now()) / (counts.kills + 1));
  for (let k = 0; k < counts.kills && Date.now() < killDeadline; k++) {
    await sleep(perRound);
    gw.expectExit();
    gw.child.kill('SIGKILL');
    kills += 1;
    await gw.exited;
    const t0 = Date.now();
    try {
      gw = await startSoakGateway(configFile);
      watchCrash(gw);
      port = gw.ports.mx;
      restarts.push(`${((Date.now() - t0) / 1000).toFixed(1)} s`);
    } catch (err) {
      restarts.push(`failed: ${(err as Error).message.split('\n')[0]}`);
      break;
    }
  }
  await sleep(Math.min(perRound, 5_000));
  sending = false;
  await Promise.all(senders);
  const delivered = await deliveredIds(gw, acked, DELIVERY_WAIT_MS);
  const lost = [...acked].filter((id) => (delivered.get(id) ?? 0) === 0).length;
  // Of the loop's messages only (acknowledged or not: a message whose 250 was lost may land).
  const duplicated = [...delivered].filter(([id, n]) => id.startsWith('<soak-') && n > 1).length;
  say(
    `kill -9 loop: ${kills} kills under load (restarts ${restarts.join(', ')}); ${attempts} attempts, ${acked.size} acknowledged, ${acked.size - lost} delivered, lost ${lost} (not in the mailbox ${DELIVERY_WAIT_MS / 1000} s after the last restart), duplicated ${duplicated}`,
  );

  const end = measure(gw);
  say(
    `after the restarts: fds ${end.fds}, RSS ${end.rss.toFixed(0)} MiB, spool temp files ${spoolTempFiles()}`,
  );

  // Stop, and look for anything left behind.
  gw.expectExit();
  const t0 = Date.now();
  gw.child.kill('SIGTERM');
  const stopped = await Promise.race([gw.exited.then(() => true), sleep(60_000).then(() => false)]);
  say(
    `SIGTERM: ${stopped ? `stopped in ${((Date.now() - t0) / 1000).toFixed(1)} s` : 'still running after 60 s (hang)'}`,
  );
  if (!stopped) gw.child.kill('SIGKILL');
  await sleep(2_000);
  const leftovers = processesMentioning(root);
  say(
    `left behind: ${leftovers.length} processes${leftovers.length ? ` (pids ${leftovers.join(' ')}, killed now)` : ''}`,
  );
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
  say(
    `crashes (exits not caused by the harness): ${crashes}; non-JSON log lines: ${gw.nonJsonLines()} (last process)`,
  );
  say(`total ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** Message-IDs in the doctor's INBOX (read through the gateway with the owner's token), until every acknowledged one is there or the deadline. */
async function deliveredIds(
  gw: RunningGateway,
  acked: ReadonlySet<string>,
  timeoutMs: number,
): Promise<Map<string, number>> {
  const deadline = Date.now() + timeoutMs;
  let counts = new Map<string, number>();
  while (Date.now() < deadline) {
    counts = new Map();
    const token = await mintDevToken({ pkiDir, subject: DOCTOR, ttlSeconds: 300 });
    const client = new ImapFlow({
      host: '127.0.0.1',
      port: gw.ports.imapTls,
      secure: true,
      tls: { ca: pem('ca/root.crt'), servername: 'localhost' },
      auth: { user: doctor, accessToken: token },
      logger: false,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const lock = await client.getMailboxLock('INBOX');
      try {
        for await (const m of client.fetch('1:*', { envelope: true })) {
          const id = m.envelope?.messageId;
          if (id) counts.set(id, (counts.get(id) ?? 0) + 1);
        }
      } finally {
        lock.release();
      }
      await client.logout();
    } catch {
      // the store may be restarting; try again
    }
    if ([...acked].every((id) => (counts.get(id) ?? 0) > 0)) break;
    await sleep(2_000);
  }
  return counts;
}

try {
  await main();
} finally {
  if (current && current.child.exitCode === null && current.child.signalCode === null) {
    current.expectExit();
    current.child.kill('SIGKILL');
  }
  const leftovers = processesMentioning(root);
  for (const pid of leftovers) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  if (!args.includes('--keep')) rmSync(root, { recursive: true, force: true });
}
