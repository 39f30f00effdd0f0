import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isGatewayError } from '../../src/errors/index.js';
import { StoreConnector, openStoreSession } from '../../src/imap/store-login.js';
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

/**
 * A store whose connections are numbered from 1: `answer(n, line, socket)` replies to each line of
 * connection n (null: close it). Every connection is greeted with SASL-IR.
 */
async function numberedStore(
  answer: (n: number, line: string) => string[] | null,
): Promise<{ port: number; connections: net.Socket[]; closed: Set<number> }> {
  const connections: net.Socket[] = [];
  const closed = new Set<number>();
  const server = net.createServer((socket) => {
    connections.push(socket);
    const n = connections.length;
    socket.on('close', () => closed.add(n));
    socket.on('error', () => {});
    socket.write('* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=PLAIN] ready\r\n');
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString('latin1');
      let idx: number;
      while ((idx = buffer.indexOf('\r\n')) >= 0) {
        const reply = answer(n, buffer.slice(0, idx));
        buffer = buffer.slice(idx + 2);
        if (reply === null) return void socket.destroy();
        socket.write(reply.map((l) => `${l}\r\n`).join(''));
      }
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as net.AddressInfo).port, connections, closed };
}

/** Polls a condition on the event loop (no fixed sleep): resolves once it holds. */
async function until(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setTimeout(resolve, 5));
}

const loggedIn = (n: number, line: string) =>
  line.startsWith('G1 AUTHENTICATE PLAIN ') ? [`G1 OK [CAPABILITY IMAP4rev1 CONN${n}] Logged in`] : null;

describe('store connections opened ahead of logins', () => {
  const connectors: StoreConnector[] = [];
  afterEach(() => connectors.splice(0).forEach((c) => c.close()));
  const connector = (port: number, options?: ConstructorParameters<typeof StoreConnector>[2]) => {
    const c = new StoreConnector({ host: '127.0.0.1', port }, master, options);
    connectors.push(c);
    return c;
  };

  it('logs in to the real Dovecot on a connection greeted before the login', async () => {
    const store = sharedStore();
    const c = new StoreConnector(store.imap, store.master);
    connectors.push(c);
    const first = await c.open('someone.warm@op.mssante.test', 5_000);
    first.socket.destroy();
    // The first login found none waiting: one is opened for the next.
    await until(() => c.warm === 1);
    const second = await c.open('someone.warm@op.mssante.test', 5_000);
    expect(second.capabilities).toMatch(/^IMAP4rev1 /);
    // The session is the store's: it answers a command as the mailbox.
    const answered = new Promise<string>((resolve) => {
      let text = '';
      second.socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\nN1 ') || text.startsWith('N1 ')) resolve(text);
      });
    });
    second.socket.resume();
    second.socket.write('N1 NOOP\r\n');
    expect(await answered).toMatch(/N1 OK/);
    second.socket.destroy();
  });

  it('the second login uses the connection opened after the first; the number kept follows demand', async () => {
    const store = await numberedStore(loggedIn);
    const c = connector(store.port);
    const a = await c.open('a@x.test', 5_000);
    expect(a.capabilities).toBe('IMAP4rev1 CONN1');
    await until(() => store.connections.length === 2);
    const b = await c.open('b@x.test', 5_000);
    // Logged in on connection 2, opened ahead; connection 3 is the one now waiting.
    expect(b.capabilities).toBe('IMAP4rev1 CONN2');
    await until(() => store.connections.length === 3);
    expect(c.warm).toBe(1);
    // Two logins at once with one waiting: the one that found none raises the number kept to 2.
    const [x, y] = await Promise.all([c.open('x@x.test', 5_000), c.open('y@x.test', 5_000)]);
    expect([x.capabilities, y.capabilities]).toContain('IMAP4rev1 CONN3');
    await until(() => c.warm === 2);
    for (const s of [a, b, x, y]) s.socket.destroy();
  });

  it('a waiting connection that breaks during the login is replaced by a fresh one, and none is kept', async () => {
    // Connection 2 (the waiting one) hangs up on the AUTHENTICATE, as a store restarting would.
    const store = await numberedStore((n, line) => (n === 2 ? null : loggedIn(n, line)));
    const c = connector(store.port);
    (await c.open('a@x.test', 5_000)).socket.destroy();
    await until(() => store.connections.length === 2);
    const b = await c.open('b@x.test', 5_000);
    expect(b.capabilities).toBe('IMAP4rev1 CONN3');
    expect(c.warm).toBe(0);
    expect(store.connections).toHaveLength(3);
    b.socket.destroy();
  });

  it('a master login the store refuses is not tried again on another connection', async () => {
    const store = await numberedStore((n, line) =>
      n === 1 ? loggedIn(n, line) : ['G1 NO [AUTHENTICATIONFAILED] no'],
    );
    const c = connector(store.port);
    (await c.open('a@x.test', 5_000)).socket.destroy();
    await until(() => store.connections.length === 2);
    const failure = await c.open('b@x.test', 5_000).catch((err: unknown) => err);
    expect(isGatewayError(failure) && failure.message).toBe('the store refused the master login');
    // Connection 3 is the one opened for the next login, not a second attempt at this one.
    expect(store.connections.length).toBeLessThanOrEqual(3);
    await until(() => store.closed.has(2));
  });

  it('a connection left unused is closed after maxIdleMs and not replaced', async () => {
    const store = await numberedStore(loggedIn);
    const c = connector(store.port, { maxIdleMs: 100 });
    (await c.open('a@x.test', 5_000)).socket.destroy();
    await until(() => store.connections.length === 2);
    await until(() => store.closed.has(2));
    expect(c.warm).toBe(0);
    expect(store.connections).toHaveLength(2);
  });

  it('close() hangs up the waiting connections; a later login connects by itself', async () => {
    const store = await numberedStore(loggedIn);
    const c = connector(store.port);
    (await c.open('a@x.test', 5_000)).socket.destroy();
    await until(() => store.connections.length === 2);
    c.close();
    await until(() => store.closed.has(2));
    const b = await c.open('b@x.test', 5_000);
    expect(b.capabilities).toBe('IMAP4rev1 CONN3');
    expect(c.warm).toBe(0);
    b.socket.destroy();
  });

  it('a connection whose greeting does not come in time is closed, not kept', async () => {
    const silent = net.createServer(() => {});
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    let accepted = 0;
    let closed = 0;
    silent.on('connection', (s: net.Socket) => {
      accepted += 1;
      s.on('close', () => (closed += 1)).resume();
    });
    const c = connector(port, { connectTimeoutMs: 100 });
    // The login itself gives up on the silent store; the connection opened ahead does too.
    await expect(c.open('a@x.test', 200)).rejects.toMatchObject({ code: 'STORE_UNAVAILABLE' });
    await until(() => accepted === 2 && closed === 2);
    expect(c.warm).toBe(0);
  });

  it('refuses a mailbox name that cannot go into a SASL field before taking a connection', async () => {
    const store = await numberedStore(loggedIn);
    const c = connector(store.port);
    await expect(c.open('a b@x.test', 1_000)).rejects.toMatchObject({ code: 'BAL_INVALID_ADDRESS' });
    expect(store.connections).toHaveLength(0);
  });
});
