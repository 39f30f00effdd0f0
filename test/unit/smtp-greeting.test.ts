import { once } from 'node:events';
import net from 'node:net';
import { SMTPServer } from 'smtp-server';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { greetAtOnce } from '../../src/smtp/greeting.js';

const servers: SMTPServer[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(servers.splice(0).map((s) => new Promise<void>((resolve) => s.close(() => resolve()))));
});

async function listening(options: ConstructorParameters<typeof SMTPServer>[0]): Promise<SMTPServer> {
  const server = new SMTPServer({ logger: false, disableReverseLookup: true, closeTimeout: 10, ...options });
  servers.push(server);
  greetAtOnce(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

function firstLine(server: SMTPServer): Promise<string> {
  const socket = net.connect((server.server.address() as net.AddressInfo).port, '127.0.0.1');
  socket.on('error', () => undefined);
  return once(socket, 'data').then(([chunk]) => {
    socket.destroy();
    return (chunk as Buffer).toString('latin1');
  });
}

describe('the SMTP greeting', () => {
  it('comes at once, with no timer to wait for (smtp-server alone pauses 100 ms)', async () => {
    const server = await listening({ name: 'mx.op.mssante.test', banner: 'test' });
    // With setTimeout frozen, smtp-server's own 100 ms pause would never end: the 220 could not come.
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    expect(await firstLine(server)).toMatch(/^220 mx\.op\.mssante\.test ESMTP test\r\n/);
  });

  it('still refuses a connection over the limit, as smtp-server does', async () => {
    const server = await listening({ name: 'mx.op.mssante.test', maxClients: 1 });
    const held = net.connect((server.server.address() as net.AddressInfo).port, '127.0.0.1');
    held.on('error', () => undefined);
    await once(held, 'data');
    expect(await firstLine(server)).toMatch(/^421 mx\.op\.mssante\.test Too many connected clients/);
    held.destroy();
  });
});
