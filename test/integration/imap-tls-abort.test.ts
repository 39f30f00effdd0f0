import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTestGateway } from '../helpers/gateway.js';

/**
 * Issue #11: IMAP connections whose TLS handshake is still running when the gateway stops (on the
 * implicit-TLS port, and after STARTTLS) are ended from the TLS side, never by destroying the raw
 * socket under Node's TLSSocket (the pattern that killed the SMTP guard with SIGSEGV). The stop
 * closes every one of them at once, without waiting for their handshake deadline, and the gateway
 * still stops cleanly.
 */
const HANDSHAKES = 10;

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** A STARTTLS session whose client never sends its ClientHello after `a OK`. */
async function stalledStartTls(port: number): Promise<net.Socket> {
  const socket = await connect(port);
  let text = '';
  await new Promise<void>((resolve) => {
    socket.on('data', (chunk: Buffer) => {
      if (text === '') socket.write('a STARTTLS\r\n');
      text += chunk.toString('latin1');
      if (/\r\na OK [^\r\n]*\r\n$/.test(text)) resolve();
    });
  });
  return socket;
}

describe('IMAP handshakes in flight at the stop', () => {
  it('are closed from the TLS side at once, on both ports', async () => {
    // Handshake deadline (preauthTimeoutSeconds) far beyond the stop: only the abort can close them.
    const gw = await startTestGateway({
      overrides: { imap: { preauthTimeoutSeconds: 300 }, relay: { enabled: false } },
    });
    const sockets = [
      ...(await Promise.all(Array.from({ length: HANDSHAKES }, () => connect(gw.addresses.imapTls!.port)))),
      ...(await Promise.all(
        Array.from({ length: HANDSHAKES }, () => stalledStartTls(gw.addresses.imap!.port)),
      )),
    ];
    const closed = sockets.map(
      (s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : s.once('close', () => resolve()))),
    );
    for (const s of sockets) s.on('error', () => {});
    const started = Date.now();
    await gw.stop();
    await Promise.all(closed);
    const ms = Date.now() - started;
    // Far below the 300 s handshake deadline: the stop ended them.
    expect(ms).toBeLessThan(60_000);
    expect(sockets.every((s) => s.destroyed)).toBe(true);
    const handshakes = await gw.metrics.registry.getSingleMetricAsString('mssgw_tls_handshakes_total');
    // Each in-flight handshake was reported as aborted by the server, on each port.
    expect(handshakes).toMatch(/listener="imap-implicit",outcome="failed",reason="ECONNABORTED"} 10/);
    expect(handshakes).toMatch(/listener="imap-starttls",outcome="failed",reason="ECONNABORTED"} 10/);
  });
});
