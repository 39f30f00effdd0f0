import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { benchRoot } from './bench-gateway.js';
import {
  type RunningGateway,
  fdCount,
  startSoakGateway,
  stopSoakGateway,
  writeSoakConfig,
} from './soak-gateway.js';

/**
 * Implicit-TLS flood against a gateway in its own process (issue #11): `FLOOD` connections from
 * 127.0.0.2 that never start their handshake, first on the submission TLS port (465-like), then on
 * IMAPS (993-like), with 20 admitted per source and 5 s deadlines, so that refusals, deadlines and
 * handshake timeouts all happen while the flood goes on. Tearing a TLS wrap down from below used to
 * kill the gateway with SIGSEGV here. After each flood the process must still be alive and serve a
 * TLS client from 127.0.0.1 (`220` greeting, `* OK` greeting). Loopback only, bounded in time.
 *
 * `node --import tsx bench/tls-flood.ts [connections per port, default 10000]`
 */

const FLOOD = Number(process.argv[2] ?? 10_000);
const ATTACKER = '127.0.0.2';
const root = benchRoot('tls-flood');
const configFile = writeSoakConfig(root);
const config = JSON.parse(readFileSync(configFile, 'utf8')) as {
  smtp: { submission: Record<string, unknown> };
  imap: Record<string, unknown>;
};
Object.assign(config.smtp.submission, { maxPreauthPerSource: 20, preauthTimeoutSeconds: 5 });
Object.assign(config.imap, { maxPreauthPerSource: 20, preauthTimeoutSeconds: 5 });
writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Opens `count` idle connections from the attacker, in batches, and waits until all are closed. */
async function flood(port: number, count: number): Promise<{ closed: number; ms: number }> {
  const started = Date.now();
  const sockets: net.Socket[] = [];
  let closed = 0;
  for (let i = 0; i < count; i += 500) {
    await Promise.all(
      Array.from(
        { length: Math.min(500, count - i) },
        () =>
          new Promise<void>((resolve) => {
            const socket = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
            sockets.push(socket);
            socket.on('error', () => {});
            socket.once('close', () => {
              closed++;
              resolve();
            });
            socket.once('connect', () => setTimeout(resolve, 200));
          }),
      ),
    );
  }
  // Admitted ones are closed by the 5 s deadline: wait for that (bounded), then let go of the rest.
  const deadline = Date.now() + 60_000;
  while (closed < count && Date.now() < deadline) await sleep(200);
  for (const s of sockets) s.destroy();
  return { closed, ms: Date.now() - started };
}

/** The first line a TLS client from 127.0.0.1 gets, within 10 s. */
function tlsGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      ca: readFileSync(path.join(root, 'pki', 'ca', 'root.crt')),
      servername: 'localhost',
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('no greeting within 10 s'));
    }, 10_000);
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(chunk.toString('latin1').split('\r\n')[0] ?? '');
    });
    socket.once('error', (err: Error) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

let gw: RunningGateway | undefined;
let failed = false;
try {
  gw = await startSoakGateway(configFile);
  console.log(`gateway pid ${gw.pid}, fds ${fdCount(gw.pid)}`);
  for (const [name, port, expected] of [
    ['submission-tls', gw.ports.submissionTls, /^220 /],
    ['imaps', gw.ports.imapTls, /^\* OK /],
  ] as const) {
    const result = await flood(port, FLOOD);
    const alive = !gw.crashed();
    let line = '';
    try {
      line = alive ? await tlsGreeting(port) : '';
    } catch (err) {
      line = `error: ${String(err)}`;
    }
    const ok = alive && expected.test(line);
    failed ||= !ok;
    console.log(
      `${name}: ${FLOOD} never-handshaking connections, ${result.closed} closed by the gateway in ${result.ms} ms; ` +
        `gateway ${alive ? 'alive' : 'CRASHED'}, fds ${alive ? fdCount(gw.pid) : '-'}, legitimate TLS greeting: ${line || '(none)'} → ${ok ? 'ok' : 'FAIL'}`,
    );
    if (!alive) break;
  }
} finally {
  await stopSoakGateway(gw);
}
if (gw?.crashed()) console.log(`gateway exit: code ${gw.child.exitCode}, signal ${gw.child.signalCode}`);
process.exitCode = failed ? 1 : 0;
