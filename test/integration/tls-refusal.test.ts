import net from 'node:net';
import tls from 'node:tls';
import nodemailer from 'nodemailer';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { REFUSAL_HANDSHAKES } from '../../src/shared/index.js';
import { pkiFile, startTestGateway } from '../helpers/gateway.js';

/**
 * Issue #11 item 1: a connection refused by the limits on an implicit-TLS listener (465-like
 * submission, 993-like IMAPS) gets its refusal in clear words once TLS is up, `421 4.7.0` or
 * `* BYE [UNAVAILABLE]`, instead of a reset; and a flood cannot make the gateway run refusal
 * handshakes without limit: beyond REFUSAL_HANDSHAKES in flight a refused socket is just closed,
 * and counted. Real TLS clients (nodemailer, node's TLS client) from a second loopback address.
 */
const ATTACKER = '127.0.0.2';
const PER_SOURCE = 2;
let gw: Gateway;

beforeAll(async () => {
  gw = await startTestGateway({
    overrides: {
      smtp: { submission: { maxPreauthPerSource: PER_SOURCE, preauthTimeoutSeconds: 60 } },
      imap: { maxPreauthPerSource: PER_SOURCE, preauthTimeoutSeconds: 60 },
      relay: { enabled: false },
    },
  });
});
afterAll(async () => {
  await gw?.stop();
});

/** Opens `count` connections from the attacker that stay idle (no ClientHello); resolves once open. */
async function hold(port: number, count: number): Promise<net.Socket[]> {
  return Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
          socket.once('connect', () => resolve(socket));
          socket.once('error', reject);
        }),
    ),
  );
}

/** A TLS client from the attacker's address: everything it reads until the gateway closes. */
function tlsTranscript(port: number): Promise<{ secured: boolean; text: string; error?: string }> {
  return new Promise((resolve) => {
    let secured = false;
    let text = '';
    let error: string | undefined;
    const socket = tls.connect({
      socket: net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER }),
      ca: pkiFile('ca/root.crt'),
      servername: 'localhost',
    });
    socket.once('secureConnect', () => (secured = true));
    socket.on('data', (chunk: Buffer) => (text += chunk.toString('latin1')));
    socket.on('error', (err: NodeJS.ErrnoException) => (error = err.code ?? err.message));
    socket.once('close', () => resolve({ secured, text, ...(error === undefined ? {} : { error }) }));
  });
}

async function replies(listener: string): Promise<Record<string, number>> {
  const metric = await gw.metrics.connectionRefusalReplies.get();
  const out: Record<string, number> = {};
  for (const v of metric.values) if (v.labels.listener === listener) out[String(v.labels.outcome)] = v.value;
  return out;
}

describe('refusals on implicit-TLS listeners are said after a bounded handshake', () => {
  it('submission over TLS: a refused client reads 421 4.7.0 (nodemailer and a raw TLS client)', async () => {
    const port = gw.addresses.submissionTls!.port;
    const held = await hold(port, PER_SOURCE);
    try {
      const seen = await tlsTranscript(port);
      expect(seen.secured).toBe(true);
      expect(seen.text).toBe(
        '421 4.7.0 mx.op.mssante.test Too many connections from your address, try again later\r\n',
      );
      const transport = nodemailer.createTransport({
        host: '127.0.0.1',
        port,
        secure: true,
        localAddress: ATTACKER,
        tls: { ca: pkiFile('ca/root.crt'), servername: 'localhost' },
      });
      const err = (await transport.verify().catch((e: unknown) => e)) as {
        responseCode?: number;
        response?: string;
      };
      expect(err.responseCode).toBe(421);
      expect(err.response).toMatch(/^421 4\.7\.0 /);
      expect((await replies('submission-tls')).sent).toBeGreaterThanOrEqual(2);
    } finally {
      held.forEach((s) => s.destroy());
    }
  });

  it('IMAPS: a refused client reads * BYE [UNAVAILABLE]', async () => {
    const port = gw.addresses.imapTls!.port;
    const held = await hold(port, PER_SOURCE);
    try {
      const seen = await tlsTranscript(port);
      expect(seen.secured).toBe(true);
      expect(seen.text).toBe(
        '* BYE [UNAVAILABLE] Too many connections from your address, try again later\r\n',
      );
      expect((await replies('imap-implicit')).sent).toBeGreaterThanOrEqual(1);
    } finally {
      held.forEach((s) => s.destroy());
    }
  });

  it.each(['submissionTls', 'imapTls'] as const)(
    '%s: beyond the refusal-handshake budget a refused socket is closed at once, and counted',
    async (name) => {
      const port = gw.addresses[name]!.port;
      const listener = name === 'imapTls' ? 'imap-implicit' : 'submission-tls';
      const held = await hold(port, PER_SOURCE);
      // Refused, and never sending a ClientHello: each holds one refusal handshake until its deadline.
      const stalling = await hold(port, REFUSAL_HANDSHAKES);
      try {
        const before = (await replies(listener))['over-budget'] ?? 0;
        const seen = await tlsTranscript(port);
        expect(seen.secured).toBe(false);
        expect(seen.text).toBe('');
        expect((await replies(listener))['over-budget']).toBe(before + 1);
        // The stalled refusals end at their short deadline: the gateway closes them all.
        const closed = await Promise.all(
          stalling.map((s) => new Promise<boolean>((resolve) => s.once('close', () => resolve(true)))),
        );
        expect(closed).toHaveLength(REFUSAL_HANDSHAKES);
        // The budget is free again: the next refused client reads its refusal.
        const again = await tlsTranscript(port);
        expect(again.secured).toBe(true);
        expect(again.text).toMatch(/^(421 4\.7\.0|\* BYE \[UNAVAILABLE\]) /);
      } finally {
        [...held, ...stalling].forEach((s) => s.destroy());
      }
    },
  );
});
