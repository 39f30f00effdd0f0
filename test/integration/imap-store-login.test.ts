import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isGatewayError } from '../../src/errors/index.js';
import { openStoreSession } from '../../src/imap/store-login.js';
import { sharedStore } from '../helpers/store-mailbox.js';

/**
 * The master login to the store: against the real Dovecot, and against scripted servers for the
 * variants a stock Dovecot does not show (no SASL-IR, no capabilities in the OK, refusals).
 */
const master = { user: 'mssgw', password: 'master-secret' };
const servers: net.Server[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

/** A scripted store: each client line gets the lines `reply` returns (null: close the connection). */
async function scriptedStore(greeting: string, reply: (line: string) => string[] | null): Promise<number> {
  const server = net.createServer((socket) => {
    socket.write(`${greeting}\r\n`);
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let idx: number;
      while ((idx = buffer.indexOf('\r\n')) >= 0) {
        const answer = reply(buffer.slice(0, idx));
        buffer = buffer.slice(idx + 2);
        if (answer === null) return void socket.destroy();
        socket.write(answer.map((l) => `${l}\r\n`).join(''));
      }
    });
    socket.on('error', () => {});
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as net.AddressInfo).port;
}

const plainResponse = (mailbox: string) =>
  Buffer.from(`${mailbox}\0${master.user}\0${master.password}`).toString('base64');

describe('store master login', () => {
  it('logs in to the real Dovecot as the mailbox and returns its capabilities', async () => {
    const store = sharedStore();
    const session = await openStoreSession(store.imap, store.master, 'someone.store@op.mssante.test', 5_000);
    expect(session.capabilities).toMatch(/^IMAP4rev1 /);
    expect(session.leftover.length).toBe(0);
    session.socket.destroy();
  });

  it('without SASL-IR: waits for the continuation; without capabilities in the OK: asks for them', async () => {
    const seen: string[] = [];
    const port = await scriptedStore('* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] ready', (line) => {
      seen.push(line);
      if (line === 'G1 AUTHENTICATE PLAIN') return ['+ '];
      if (line === plainResponse('a@x.test')) return ['G1 OK Logged in'];
      if (line === 'G2 CAPABILITY') return ['* CAPABILITY IMAP4rev1 IDLE MOVE', 'G2 OK done', '* 3 EXISTS'];
      return null;
    });
    const session = await openStoreSession({ host: '127.0.0.1', port }, master, 'a@x.test', 5_000);
    expect(seen).toEqual(['G1 AUTHENTICATE PLAIN', plainResponse('a@x.test'), 'G2 CAPABILITY']);
    expect(session.capabilities).toBe('IMAP4rev1 IDLE MOVE');
    // Sent after the tagged OK: it belongs to the client.
    expect(session.leftover.toString()).toBe('* 3 EXISTS\r\n');
    session.socket.destroy();
  });

  it.each<[string, string, (line: string) => string[] | null]>([
    [
      'a refused master login',
      '* OK [CAPABILITY IMAP4rev1 SASL-IR] ready',
      () => ['G1 NO [AUTHENTICATIONFAILED] no'],
    ],
    ['a BYE greeting', '* BYE too busy', () => null],
    ['a store that hangs up', '* OK [CAPABILITY IMAP4rev1 SASL-IR] ready', () => null],
  ])('%s is STORE_UNAVAILABLE', async (_name, greeting, reply) => {
    const port = await scriptedStore(greeting, reply);
    const failure = await openStoreSession({ host: '127.0.0.1', port }, master, 'a@x.test', 5_000).catch(
      (err: unknown) => err,
    );
    expect(isGatewayError(failure) && failure.code).toBe('STORE_UNAVAILABLE');
  });

  it('gives up on a silent store after the timeout', async () => {
    const server = net.createServer(() => {});
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    const started = Date.now();
    await expect(
      openStoreSession({ host: '127.0.0.1', port }, master, 'a@x.test', 300),
    ).rejects.toMatchObject({
      code: 'STORE_UNAVAILABLE',
    });
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('refuses a mailbox name that cannot go into a SASL field', async () => {
    const store = sharedStore();
    await expect(openStoreSession(store.imap, store.master, 'a b@x.test', 1_000)).rejects.toMatchObject({
      code: 'BAL_INVALID_ADDRESS',
    });
  });
});
