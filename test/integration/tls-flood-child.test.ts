import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import { externalBackendsConfig, startChildGateway, stopChildGateways } from '../helpers/child-gateway.js';
import { pkiFile, scratchDir } from '../helpers/gateway.js';

/**
 * Issue #11: connections that never start their TLS handshake, on both implicit-TLS listeners of a
 * gateway in its own process, beyond the per-source quota and past the pre-authentication deadline.
 * The submission guard used to close a timed-out one by destroying the raw socket under smtp-server's
 * TLSSocket: smtp-server then called getProtocol() on a freed SSL and the gateway died with SIGSEGV
 * (SSL_get_version ← TLSWrap::GetProtocol), 40 such connections were enough. The gateway must
 * outlive the flood and still greet TLS clients on both ports.
 */
afterEach((context) => stopChildGateways(context));

const ATTACKER = '127.0.0.2';
const PER_SOURCE = 20;
const DEADLINE_SECONDS = 5;
/** Per port: ten quotas, so that refusals, deadlines and new admissions interleave. */
const FLOOD = 200;

/** Opens `count` connections from the attacker that never handshake; resolves once all are closed. */
async function holdUntilClosed(port: number, count: number): Promise<number> {
  let closed = 0;
  await Promise.all(
    Array.from(
      { length: count },
      () =>
        new Promise<void>((resolve) => {
          const socket = net.connect({ port, host: '127.0.0.1', localAddress: ATTACKER });
          socket.on('error', () => {});
          socket.once('close', () => {
            closed++;
            resolve();
          });
        }),
    ),
  );
  return closed;
}

function tlsGreeting(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      port,
      host: '127.0.0.1',
      ca: pkiFile('ca/root.crt'),
      servername: 'localhost',
    });
    socket.once('data', (chunk: Buffer) => {
      socket.destroy();
      resolve(chunk.toString('latin1').split('\r\n')[0] ?? '');
    });
    socket.once('error', reject);
  });
}

function portOf(ready: Record<string, unknown>, key: string): number {
  const value = (ready.listening as Record<string, string>)[key]!;
  return Number(value.slice(value.lastIndexOf(':') + 1));
}

describe('implicit-TLS flood against a gateway process', () => {
  it('never-handshaking connections on 465-like and 993-like ports are closed and the gateway keeps serving', async () => {
    const gw = await startChildGateway({
      name: 'tls-flood',
      config: externalBackendsConfig({
        dataDir: scratchDir('tls-flood'),
        prefix: `test:${randomUUID()}:`,
        overrides: {
          smtp: { submission: { maxPreauthPerSource: PER_SOURCE, preauthTimeoutSeconds: DEADLINE_SECONDS } },
          imap: { maxPreauthPerSource: PER_SOURCE, preauthTimeoutSeconds: DEADLINE_SECONDS },
          relay: { enabled: false },
        },
      }),
    });
    for (const [key, greeting] of [
      ['submissionTls', /^220 /],
      ['imapTls', /^\* OK /],
    ] as const) {
      const port = portOf(gw.ready, key);
      // Every one is closed by the gateway: refused at once, or at the deadline once admitted.
      expect(await holdUntilClosed(port, FLOOD)).toBe(FLOOD);
      const line = await tlsGreeting(port).catch((err: unknown) => `no greeting: ${String(err)}`);
      const exit = `${key}: gateway exit code ${gw.child.exitCode}, signal ${gw.child.signalCode}`;
      expect(line, `${exit}\n${gw.tail()}`).toMatch(greeting);
      expect(gw.child.exitCode, exit).toBeNull();
      expect(gw.child.signalCode, exit).toBeNull();
    }
  });
});
