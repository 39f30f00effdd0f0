import { readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { benchRoot } from './bench-gateway.js';
import {
  type RunningGateway,
  fdCount,
  startSoakGateway,
  stopSoakGateway,
  writeSoakConfig,
} from './soak-gateway.js';

/**
 * STARTTLS stall against a gateway in its own process (issue #11): `COUNT` clients on the MX and
 * submission ports say EHLO, ask for STARTTLS, get `220`, and then never start the handshake, so
 * the pre-TLS / pre-authentication deadline finds each one mid-upgrade. The process must survive
 * and greet a client afterwards. Loopback only, bounded in time.
 *
 * `node --import tsx bench/starttls-stall.ts [clients per port, default 200]`
 */

const COUNT = Number(process.argv[2] ?? 200);
const root = benchRoot('starttls-stall');
const configFile = writeSoakConfig(root);
const config = JSON.parse(readFileSync(configFile, 'utf8')) as {
  smtp: { mx: Record<string, unknown>; submission: Record<string, unknown> };
};
Object.assign(config.smtp.mx, { maxPreauthPerSource: 1000, preTlsTimeoutSeconds: 5 });
Object.assign(config.smtp.submission, { maxPreauthPerSource: 1000, preauthTimeoutSeconds: 5 });
writeFileSync(configFile, JSON.stringify(config, null, 2), { mode: 0o600 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** One client that stalls after `220 Ready to start TLS`; resolves when the gateway closes it. */
function stall(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    let step = 0;
    let buffer = '';
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      if (!buffer.endsWith('\r\n')) return;
      const last = buffer.trimEnd().split('\r\n').pop() ?? '';
      buffer = '';
      if (/^\d{3}-/.test(last)) return;
      if (step === 0) socket.write('EHLO stall.test\r\n');
      else if (step === 1) socket.write('STARTTLS\r\n');
      step += 1;
    });
    socket.once('close', () => resolve(step >= 3 ? 'stalled' : `step ${step}`));
  });
}

function greeting(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    const timer = setTimeout(() => (socket.destroy(), resolve('(none within 10 s)')), 10_000);
    socket.on('error', (err) => (clearTimeout(timer), resolve(`error ${err.message}`)));
    socket.once('data', (chunk: Buffer) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(chunk.toString('latin1').split('\r\n')[0] ?? '');
    });
  });
}

let gw: RunningGateway | undefined;
let failed = false;
try {
  gw = await startSoakGateway(configFile);
  for (const [name, port] of [
    ['mx', gw.ports.mx],
    ['submission', gw.ports.submission],
  ] as const) {
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: COUNT }, () => stall(port)));
    await sleep(3_000); // the 2 s backstop after the deadline
    const alive = !gw.crashed();
    let line = alive ? await greeting(port) : '';
    for (let i = 0; i < 5 && alive && !/^220 /.test(line); i++) {
      console.log(`  ${name}: greeting ${line}; again in 5 s`);
      await sleep(5_000);
      line = await greeting(port);
    }
    const stalled = outcomes.filter((o) => o === 'stalled').length;
    const ok = alive && /^220 /.test(line);
    failed ||= !ok;
    console.log(
      `${name}: ${COUNT} clients stalled after STARTTLS (${stalled} reached the upgrade), closed in ${Date.now() - started} ms; ` +
        `gateway ${alive ? 'alive' : 'CRASHED'}, fds ${alive ? fdCount(gw.pid) : '-'}, greeting: ${line || '(none)'} → ${ok ? 'ok' : 'FAIL'}`,
    );
    if (!alive) break;
  }
} finally {
  await stopSoakGateway(gw);
}
if (gw?.crashed()) console.log(`gateway exit: code ${gw.child.exitCode}, signal ${gw.child.signalCode}`);
process.exitCode = failed ? 1 : 0;
