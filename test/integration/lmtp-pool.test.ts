import net from 'node:net';
import { once } from 'node:events';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LmtpPool } from '../../src/store/index.js';
import { readInbox, sharedStore, uniqueMailbox } from '../helpers/store-mailbox.js';

const store = sharedStore();

interface Connection {
  readonly chunks: string[];
  readonly lines: string[];
  closed: boolean;
}

/**
 * A small LMTP server that keeps per-connection transcripts (the raw chunks show pipelining) and
 * can misbehave on cue: `onLine` may return 'drop' to close the connection instead of answering.
 */
async function lmtpServer(
  options: {
    pipelining?: boolean;
    onLine?: (line: string, conn: Connection, index: number) => 'drop' | undefined;
  } = {},
): Promise<{ port: number; connections: Connection[]; delivered: number; close(): Promise<void> }> {
  const connections: Connection[] = [];
  const sockets = new Set<net.Socket>();
  const state = { delivered: 0 };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    const conn: Connection = { chunks: [], lines: [], closed: false };
    const index = connections.push(conn) - 1;
    socket.on('close', () => {
      conn.closed = true;
      sockets.delete(socket);
    });
    socket.on('error', () => undefined);
    socket.write('220 test LMTP\r\n');
    let inData = false;
    let rcpts = 0;
    let buffered = '';
    socket.on('data', (chunk: Buffer) => {
      conn.chunks.push(chunk.toString('latin1'));
      buffered += chunk.toString('latin1');
      for (let eol = buffered.indexOf('\r\n'); eol >= 0; eol = buffered.indexOf('\r\n')) {
        const line = buffered.slice(0, eol);
        buffered = buffered.slice(eol + 2);
        conn.lines.push(line);
        if (options.onLine?.(line, conn, index) === 'drop') {
          socket.destroy();
          return;
        }
        if (inData) {
          if (line !== '.') continue;
          inData = false;
          state.delivered += 1;
          socket.write('250 2.0.0 saved\r\n'.repeat(rcpts));
          rcpts = 0;
        } else if (line.startsWith('LHLO')) {
          socket.write(
            `250-test\r\n${options.pipelining ? '250-PIPELINING\r\n' : ''}250 ENHANCEDSTATUSCODES\r\n`,
          );
        } else if (line.startsWith('RCPT')) {
          rcpts += 1;
          socket.write('250 2.1.5 OK\r\n');
        } else if (line === 'DATA') {
          inData = rcpts > 0;
          socket.write(rcpts > 0 ? '354 go\r\n' : '554 5.5.1 no valid recipients\r\n');
        } else if (line === 'RSET') {
          rcpts = 0;
          socket.write('250 2.0.0 OK\r\n');
        } else if (line === 'QUIT') {
          socket.end('221 2.0.0 bye\r\n');
        } else {
          socket.write('250 2.1.0 OK\r\n');
        }
      }
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address() as net.AddressInfo;
  return {
    port: address.port,
    connections,
    get delivered() {
      return state.delivered;
    },
    close: async () => {
      for (const s of sockets) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}

const message = (): Buffer => Buffer.from('Subject: pooled\r\n\r\nbody\r\n');

describe('pooled LMTP connections', () => {
  it('carries successive transactions over one connection, with RSET between them', async () => {
    const server = await lmtpServer();
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port }, { size: 4 });
    try {
      for (const n of [1, 2, 3]) {
        const results = await pool.deliver({ from: 'a@x.test', to: [`r${n}@x.test`] }, message());
        expect(results).toMatchObject([{ outcome: 'delivered', code: 250 }]);
      }
      expect(server.connections).toHaveLength(1);
      const lines = server.connections[0]!.lines.filter((l) => /^(LHLO|RSET|MAIL|DATA)/.test(l));
      expect(lines.map((l) => l.split(' ')[0])).toEqual([
        'LHLO',
        'MAIL',
        'DATA',
        'RSET',
        'MAIL',
        'DATA',
        'RSET',
        'MAIL',
        'DATA',
      ]);
      expect(server.delivered).toBe(3);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('pipelines RSET, MAIL, RCPT and DATA in one write when the store offers PIPELINING', async () => {
    const server = await lmtpServer({ pipelining: true });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port });
    try {
      for (let n = 0; n < 2; n += 1) {
        const results = await pool.deliver({ from: 'a@x.test', to: ['b@x.test', 'c@x.test'] }, message());
        expect(results).toMatchObject([{ outcome: 'delivered' }, { outcome: 'delivered' }]);
      }
      const chunks = server.connections[0]!.chunks;
      expect(chunks).toContain(
        'RSET\r\nMAIL FROM:<a@x.test>\r\nRCPT TO:<b@x.test>\r\nRCPT TO:<c@x.test>\r\nDATA\r\n',
      );
      expect(server.delivered).toBe(2);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('opens at most `size` connections for concurrent deliveries, and the rest wait their turn', async () => {
    const server = await lmtpServer({ pipelining: true });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port }, { size: 3 });
    try {
      const all = await Promise.all(
        Array.from({ length: 12 }, (_, n) => pool.deliver({ from: '', to: [`r${n}@x.test`] }, message())),
      );
      expect(all.flat().every((r) => r.outcome === 'delivered')).toBe(true);
      expect(server.connections.length).toBeLessThanOrEqual(3);
      expect(server.delivered).toBe(12);
      expect(pool.openConnections).toBeLessThanOrEqual(3);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('retries on a fresh connection when a reused one fails before the final dot', async () => {
    // The store closed the idle connection: the RSET of the second transaction meets a dead socket.
    const server = await lmtpServer({
      onLine: (line, _conn, index) => (index === 0 && line === 'RSET' ? 'drop' : undefined),
    });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port });
    try {
      await pool.deliver({ from: '', to: ['a@x.test'] }, message());
      const opened = () => Readable.from([message()]);
      const results = await pool.deliver({ from: '', to: ['b@x.test'] }, opened);
      expect(results).toMatchObject([{ outcome: 'delivered', code: 250 }]);
      expect(server.connections).toHaveLength(2);
      expect(server.delivered).toBe(2);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('retries on a newly opened connection, not on another idle one that may be dead as well', async () => {
    // Two idle connections, both closed by the store while idle (each dies at its next RSET).
    const server = await lmtpServer({
      onLine: (line, _conn, index) => (index < 2 && line === 'RSET' ? 'drop' : undefined),
    });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port }, { size: 4 });
    try {
      await Promise.all(
        ['a@x.test', 'b@x.test'].map((to) => pool.deliver({ from: '', to: [to] }, message())),
      );
      expect(server.connections).toHaveLength(2);
      const results = await pool.deliver({ from: '', to: ['c@x.test'] }, message());
      expect(results).toMatchObject([{ outcome: 'delivered', code: 250 }]);
      // The first idle one failed at RSET; the retry opened a third rather than take the second.
      expect(server.connections).toHaveLength(3);
      expect(server.connections[2]!.lines.some((l) => l === 'RCPT TO:<c@x.test>')).toBe(true);
      expect(server.delivered).toBe(3);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('a connection lost before the final dot is a plain temporary failure, not an unknown outcome', async () => {
    // Dropped in the middle of the message: the store cannot have delivered anything. The rest of
    // the message is read only once the store closed the connection.
    const server = await lmtpServer({ onLine: (line) => (line === 'first part' ? 'drop' : undefined) });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port });
    try {
      const body = new Readable({ read: () => undefined });
      body.push('Subject: cut\r\n\r\nfirst part\r\n');
      const cut = (async () => {
        while (!server.connections[0]?.closed) await new Promise((resolve) => setImmediate(resolve));
        body.push('second part\r\n');
        body.push(null);
      })();
      const results = await pool.deliver({ from: '', to: ['a@x.test'] }, () => body);
      await cut;
      expect(results).toMatchObject([{ outcome: 'temporary', code: 421, enhancedCode: '4.4.2' }]);
      expect(results[0]!.outcomeUnknown).toBeUndefined();
      expect(server.delivered).toBe(0);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('never sends the message again once the final dot went out on a connection that broke', async () => {
    const server = await lmtpServer({
      onLine: (line, conn) => (line === '.' && conn.lines.includes('RSET') ? 'drop' : undefined),
    });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port });
    try {
      await pool.deliver({ from: '', to: ['a@x.test'] }, message());
      const results = await pool.deliver({ from: '', to: ['b@x.test'] }, message());
      // The store may hold it: temporary 4.4.2, and the delivery worker asks the store before retrying.
      expect(results).toMatchObject([
        { outcome: 'temporary', code: 421, enhancedCode: '4.4.2', outcomeUnknown: true },
      ]);
      expect(server.connections).toHaveLength(1);
      expect(server.connections[0]!.lines.filter((l) => l === 'DATA')).toHaveLength(2);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('closes a connection left idle past the idle limit', async () => {
    const server = await lmtpServer();
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port }, { idleMs: 50 });
    try {
      await pool.deliver({ from: '', to: ['a@x.test'] }, message());
      const conn = server.connections[0]!;
      while (!conn.closed) await new Promise((resolve) => setImmediate(resolve));
      expect(conn.lines.at(-1)).toBe('QUIT');
      expect(pool.openConnections).toBe(0);
      const results = await pool.deliver({ from: '', to: ['b@x.test'] }, message());
      expect(results).toMatchObject([{ outcome: 'delivered' }]);
      expect(server.connections).toHaveLength(2);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('does not open the message when the store refuses every recipient', async () => {
    const server = await lmtpServer({ pipelining: true });
    const pool = new LmtpPool({ host: '127.0.0.1', port: server.port });
    try {
      let opened = 0;
      const results = await pool.deliver({ from: '', to: ['bad address@x.test'] }, () => {
        opened += 1;
        return Readable.from([message()]);
      });
      expect(results).toMatchObject([{ outcome: 'permanent', code: 553 }]);
      expect(opened).toBe(0);
    } finally {
      pool.close();
      await server.close();
    }
  });

  it('delivers concurrent messages into the real store exactly once each, over a few connections', async () => {
    const pool = new LmtpPool(store.lmtp, { size: 4 });
    try {
      const mailboxes = Array.from({ length: 10 }, (_, n) => uniqueMailbox(`pool${n}`));
      const refused = uniqueMailbox('no/such');
      const all = await Promise.all(
        mailboxes.map((to, n) =>
          pool.deliver(
            { from: 'lab@peer.mssante.test', to: n === 0 ? [refused, to] : [to] },
            Buffer.from(`Subject: pooled ${n}\r\n\r\nbody ${n}\r\n`),
          ),
        ),
      );
      expect(all[0]).toMatchObject([{ outcome: 'permanent', code: 550 }, { outcome: 'delivered' }]);
      for (const results of all.slice(1)) expect(results).toMatchObject([{ outcome: 'delivered' }]);
      expect(pool.openConnections).toBeLessThanOrEqual(4);
      for (const mailbox of mailboxes)
        expect(await readInbox(store.imap, store.master, mailbox)).toHaveLength(1);
    } finally {
      pool.close();
    }
  });
});
