import { randomInt } from 'node:crypto';
import net from 'node:net';

/**
 * Ports handed to programs that are told a port rather than listening on port 0: below Linux's
 * default ephemeral range (32768–60999). A port the kernel gave out (listen on 0, then closed) can
 * be taken again, before the program binds it, as the local port of another test's outgoing
 * connection (EADDRINUSE seen in loaded campaign runs); nothing allocates in this range by itself.
 */
export const TEST_PORTS = { low: 20_000, high: 32_000 } as const;

/** A random port of TEST_PORTS, checked free on `host` (another test may hold one: then another). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    const port = TEST_PORTS.low + randomInt(TEST_PORTS.high - TEST_PORTS.low);
    if (await canListen(port, host)) return port;
    if (attempt >= 100) throw new Error(`no free port in ${TEST_PORTS.low}-${TEST_PORTS.high} on ${host}`);
  }
}

function canListen(port: number, host: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', (err: NodeJS.ErrnoException) =>
      err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(false) : reject(err),
    );
    srv.listen(port, host, () => srv.close(() => resolve(true)));
  });
}
