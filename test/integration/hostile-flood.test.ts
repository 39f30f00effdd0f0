import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { mintDevToken } from '../../src/auth/index.js';
import { PEER_DOMAIN, pkiFile, startTestGateway, uniqueBal } from '../helpers/gateway.js';
import { peerMx, tokenSubmission } from '../helpers/smtp-clients.js';

/**
 * Issue #11 item 1 on real sockets: 10,000 connections held open from one address (127.0.0.2) do not
 * keep another address (127.0.0.1) from being served on any listener: its greeting comes within a
 * second and its delivery or login completes. The flood gets `421 4.7.0` (SMTP) or
 * `* BYE [UNAVAILABLE]` (IMAP) beyond its quota, counted in a metric.
 */
const system = { kind: 'system' as const, id: 'test' };
const ATTACKER = '127.0.0.2';
const FLOOD = 10_000;
const PER_SOURCE = 20;
let gw: Gateway;
let bal: string;

beforeAll(async () => {
  gw = await startTestGateway({
    overrides: {
      smtp: {
        mx: { maxPreauthPerSource: PER_SOURCE, preTlsTimeoutSeconds: 5 },
        submission: { maxPreauthPerSource: PER_SOURCE, preauthTimeoutSeconds: 5 },
      },
      imap: { maxPreauthPerSource: PER_SOURCE },
      relay: { enabled: false },
    },
  });
  bal = uniqueBal('flood');
  await gw.registry.create({ address: bal, type: 'PER', owner: '810000000001' }, system);
});
afterAll(async () => {
  await gw?.stop();
});

interface Flood {
  readonly held: net.Socket[];
  /** First line the gateway sent on each refused connection, with its count. */
  readonly refusals: Map<string, number>;
  readonly closed: number;
  /**
   * Connections the gate let in (greeted, or still held). Under load a flood outlasts the 5 s
   * deadlines, each of which frees the quota again: at most PER_SOURCE per deadline period.
   */
  readonly admitted: number;
  /** Connections the gateway never saw (its accept queue was full): reset by the kernel when probed. */
  readonly unreached: number;
  readonly ms: number;
  release(): void;
}

/** Opens `count` idle connections from the attacker's address and waits until the gateway decided. */
async function flood(port: number, count: number): Promise<Flood> {
  const started = Date.now();
  const sockets: net.Socket[] = [];
  /** Sockets that received at least one byte from the gateway. */
  const heard = new WeakSet<net.Socket>();
  const refusals = new Map<string, number>();
  let closed = 0;
  const batch = 500;
  for (let i = 0; i < count; i += batch) {
    await Promise.all(
      Array.from(
        { length: Math.min(batch, count - i) },
        () =>
          new Promise<void>((resolve) => {
            const socket = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
            sockets.push(socket);
            let first = '';
            socket.on('data', (chunk: Buffer) => {
              heard.add(socket);
              if (first === '') first = chunk.toString('latin1').split('\r\n')[0] ?? '';
            });
            socket.on('error', () => {});
            socket.once('close', () => {
              closed++;
              const line = first.replace(/^(421 4\.7\.0|\* BYE \[UNAVAILABLE\]).*/, '$1') || '(closed)';
              refusals.set(line, (refusals.get(line) ?? 0) + 1);
              resolve();
            });
            // Admitted connections stay open and idle: they resolve once connected and greeted
            // (or, on a TLS port, once connected: they never start their handshake).
            socket.once('connect', () => setTimeout(resolve, 200));
          }),
      ),
    );
  }
  // Everything beyond the quota is closed by the gateway. The gateway shares this process's event
  // loop, so on a busy machine it may need well over a minute for 10,000 connections (a loaded
  // campaign run saw 470 still open at a fixed 60 s): wait while closes keep coming, and give up
  // only after 30 s without one (or 10 minutes in all).
  const giveUp = Date.now() + 600_000;
  const settle = async () => {
    let lastClosed = closed;
    let lastProgress = Date.now();
    while (closed < count - PER_SOURCE && Date.now() < giveUp && Date.now() - lastProgress < 30_000) {
      await new Promise((r) => setTimeout(r, 100));
      if (closed !== lastClosed) [lastClosed, lastProgress] = [closed, Date.now()];
    }
  };
  await settle();
  // A connection can be open on our side only: when the listener's accept queue is full, Linux
  // drops the handshake's last ACK, our socket counts as connected, and the gateway never sees it
  // (seen at load 15: 103 such sockets, silent for good). A byte from us settles it: the kernel
  // completes the handshake and the gateway decides, or answers with a reset. Sockets that heard
  // nothing are probed; on a plaintext listener an admitted one was greeted, on a TLS listener a
  // byte is a broken ClientHello, which changes nothing to the count.
  const silent = sockets.filter((s) => !s.destroyed && !heard.has(s));
  if (silent.length > 0 && closed < count - PER_SOURCE) {
    for (const s of silent) s.write('\r\n');
    await settle();
  }
  // Probed sockets that closed without a byte were reset by the kernel: the gateway never saw them,
  // so they carry no refusal line (a loaded campaign run counted 136 of them among 10,000).
  const unreached = silent.filter((s) => s.destroyed && !heard.has(s)).length;
  const held = sockets.filter((s) => !s.destroyed);
  const greeted = [...refusals].filter(([line]) => /^(220 |\* OK)/.test(line)).reduce((n, [, c]) => n + c, 0);
  const admitted = greeted + held.length;
  const ms = Date.now() - started;
  // One source never holds more than its quota at once: each deadline period admits PER_SOURCE more.
  expect(admitted).toBeLessThanOrEqual(PER_SOURCE * (Math.ceil(ms / 5_000) + 1));
  return {
    held,
    admitted,
    unreached,
    ms,
    refusals,
    get closed() {
      return closed;
    },
    release: () => sockets.forEach((s) => s.destroy()),
  };
}

/** Milliseconds from connect to the first line from the gateway. */
function greeting(
  socket: net.Socket | tls.TLSSocket,
  started: number,
): Promise<{ ms: number; line: string }> {
  return new Promise((resolve, reject) => {
    socket.once('data', (chunk: Buffer) =>
      resolve({ ms: Date.now() - started, line: chunk.toString('latin1').split('\r\n')[0]! }),
    );
    socket.once('error', reject);
  });
}

/**
 * Beyond the quota the gateway answers `421 4.7.0` and closes, nothing else. On a loaded machine the
 * kernel resets some connections of a 10,000-connection storm before the gateway accepts them (accept
 * backlog): those close without a reply, so the count of replies is bounded below, not exact.
 */
function expectRefusedWith421(attack: Flood): void {
  const others = [...attack.refusals].filter(([line]) => line !== '421 4.7.0' && line !== '(closed)');
  // The admitted ones (the quota, again each time the pre-TLS or pre-auth deadline closed some while
  // the storm went on) were greeted.
  expect(others.filter(([line]) => !/^220 /.test(line))).toEqual([]);
  expect(attack.refusals.get('421 4.7.0')).toBeGreaterThanOrEqual(0.9 * (FLOOD - PER_SOURCE));
}

const token = () => mintDevToken({ pkiDir: gw.config.pkiDir, subject: '810000000001', ttlSeconds: 600 });

describe('one address holding 10,000 connections does not lock out another', () => {
  it('MX: a trusted operator is greeted within a second and delivers', async () => {
    const attack = await flood(gw.addresses.mx!.port, FLOOD);
    try {
      expect(attack.closed).toBeGreaterThanOrEqual(FLOOD - PER_SOURCE);
      expectRefusedWith421(attack);
      const started = Date.now();
      const probe = net.connect({
        port: gw.addresses.mx!.port,
        host: '127.0.0.1',
        localAddress: '127.0.0.1',
      });
      const first = await greeting(probe, started);
      probe.destroy();
      console.error(`MX legitimate greeting under flood: ${first.ms} ms (${first.line})`);
      expect(first.line).toMatch(/^220 /);
      expect(first.ms).toBeLessThan(1000);
      const info = await peerMx(gw.addresses.mx!.port, { localAddress: '127.0.0.1' }).sendMail({
        envelope: { from: `martin@${PEER_DOMAIN}`, to: [bal] },
        raw: `From: <martin@${PEER_DOMAIN}>\r\nTo: <${bal}>\r\nSubject: flood\r\nMessage-ID: <${randomUUID()}@${PEER_DOMAIN}>\r\n\r\nok\r\n`,
      });
      expect(info.response).toMatch(/^250 2\.0\.0 /);
    } finally {
      attack.release();
    }
    const { values } = await gw.metrics.smtpConnectionsRefused.get();
    const refused = values.find((v) => v.labels.listener === 'mx' && v.labels.reason === 'max-per-source');
    // Every refusal the attacker saw was counted (the kernel may reset a few connections of the
    // storm before the gateway accepts them: those it never saw).
    expect(refused?.value).toBeGreaterThanOrEqual(attack.refusals.get('421 4.7.0') ?? Infinity);
  });

  it('submission: a client is greeted within a second and submits', async () => {
    const attack = await flood(gw.addresses.submission!.port, FLOOD);
    try {
      expect(attack.closed).toBeGreaterThanOrEqual(FLOOD - PER_SOURCE);
      expectRefusedWith421(attack);
      const started = Date.now();
      const probe = net.connect({ port: gw.addresses.submission!.port, host: '127.0.0.1' });
      const first = await greeting(probe, started);
      probe.destroy();
      console.error(`submission legitimate greeting under flood: ${first.ms} ms (${first.line})`);
      expect(first.line).toMatch(/^220 /);
      expect(first.ms).toBeLessThan(1000);
      const info = await tokenSubmission(gw.addresses.submission!.port, bal, await token()).sendMail({
        envelope: { from: bal, to: [bal] },
        from: bal,
        to: bal,
        subject: 'flood',
        text: 'ok',
      });
      expect(info.response).toMatch(/^250 2\.0\.0 /);
    } finally {
      attack.release();
    }
  });

  it('submission (implicit TLS): half-open handshakes do not keep a client out', async () => {
    const port = gw.addresses.submissionTls!.port;
    const attack = await flood(port, FLOOD);
    try {
      expect(attack.closed).toBeGreaterThanOrEqual(FLOOD - PER_SOURCE);
      const started = Date.now();
      const probe = tls.connect({
        port,
        host: '127.0.0.1',
        ca: pkiFile('ca/root.crt'),
        servername: 'localhost',
      });
      const first = await greeting(probe, started);
      probe.destroy();
      console.error(`submission-tls legitimate greeting under flood: ${first.ms} ms (${first.line})`);
      expect(first.line).toMatch(/^220 /);
      expect(first.ms).toBeLessThan(1000);
    } finally {
      attack.release();
    }
  });

  it.each(['imap', 'imapTls'] as const)(
    '%s: a client is greeted within a second and logs in',
    async (name) => {
      const port = name === 'imap' ? gw.addresses.imap!.port : gw.addresses.imapTls!.port;
      const attack = await flood(port, FLOOD);
      try {
        expect(attack.closed).toBeGreaterThanOrEqual(FLOOD - PER_SOURCE);
        if (name === 'imap') {
          expect(
            attack.refusals.get('* BYE [UNAVAILABLE]'),
            `refusals ${JSON.stringify([...attack.refusals])}, admitted ${attack.admitted}, never reached the gateway ${attack.unreached}`,
          ).toBeGreaterThanOrEqual(FLOOD - attack.admitted - attack.unreached - 50);
        }
        const started = Date.now();
        const tlsPort = gw.addresses.imapTls!.port;
        const client =
          name === 'imap'
            ? net.connect({ port, host: '127.0.0.1' })
            : tls.connect({
                port: tlsPort,
                host: '127.0.0.1',
                ca: pkiFile('ca/root.crt'),
                servername: 'localhost',
              });
        const first = await greeting(client, started);
        console.error(`${name} legitimate greeting under flood: ${first.ms} ms`);
        expect(first.line).toMatch(/^\* OK /);
        expect(first.ms).toBeLessThan(1000);
        client.destroy();
        // The login completes (on the TLS port: the STARTTLS one is covered by imap-login tests).
        const secure = tls.connect({
          port: tlsPort,
          host: '127.0.0.1',
          ca: pkiFile('ca/root.crt'),
          servername: 'localhost',
        });
        await greeting(secure, Date.now());
        const xoauth2 = Buffer.from(`user=${bal}\x01auth=Bearer ${await token()}\x01\x01`).toString('base64');
        const reply = new Promise<string>((resolve) => {
          let text = '';
          secure.on('data', (chunk: Buffer) => {
            text += chunk.toString('latin1');
            const tagged = text.split('\r\n').find((l) => l.startsWith('a1 '));
            if (tagged) resolve(tagged);
          });
        });
        secure.write(`a1 AUTHENTICATE XOAUTH2 ${xoauth2}\r\n`);
        expect(await reply).toMatch(/^a1 OK/);
        secure.destroy();
      } finally {
        attack.release();
      }
    },
  );
});

describe('deadlines before TLS and before authentication', () => {
  /** The lines the gateway sends until it closes the connection. */
  function linesUntilClosed(socket: net.Socket): Promise<string[]> {
    return new Promise((resolve) => {
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        // EHLO once greeted (an early talker is refused for that alone), then nothing more.
        if (text === '') socket.write('EHLO slow.example\r\n');
        text += chunk.toString('latin1');
      });
      socket.on('error', () => {});
      socket.once('close', () => resolve(text.split('\r\n').filter(Boolean)));
    });
  }

  it('MX: a client that never starts TLS gets 421 4.7.0 at smtp.mx.preTlsTimeoutSeconds', async () => {
    const socket = net.connect({ port: gw.addresses.mx!.port, host: '127.0.0.1' });
    const lines = linesUntilClosed(socket);
    const started = Date.now();
    const seen = await lines;
    expect(seen.at(-1)).toBe('421 4.7.0 mx.op.mssante.test Too slow, closing connection');
    expect(Date.now() - started).toBeGreaterThan(3_000);
  });

  it('submission: a client that never authenticates gets 421 4.7.0 at preauthTimeoutSeconds', async () => {
    const socket = net.connect({ port: gw.addresses.submission!.port, host: '127.0.0.1' });
    const lines = linesUntilClosed(socket);
    expect((await lines).at(-1)).toBe('421 4.7.0 mx.op.mssante.test Too slow, closing connection');
  });
});
