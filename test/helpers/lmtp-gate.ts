import { once } from 'node:events';
import net from 'node:net';
import path from 'node:path';
import { scratchDir } from './gateway.js';

/**
 * A pass-through in front of the real store's LMTP socket that can hold the store's answers: once
 * armed, the next connection that sends a final dot gets no more bytes from the store until
 * `release()`. The store has then delivered the message while the gateway waits for its answer: an
 * attempt in flight whose outcome the gateway does not know (the duplicate window), as long as the
 * test wants.
 */
export interface LmtpGate {
  /** The Unix socket the gateway's `store.lmtp.path` points to. */
  readonly socket: string;
  /** Holds the answers of the next transaction to send its final dot. */
  arm(): void;
  /** Resolves once a connection holds its answers (the store has the message). */
  readonly held: Promise<void>;
  /** Lets every held answer through, and holds nothing more. */
  release(): void;
  close(): Promise<void>;
}

const FINAL_DOT = '\r\n.\r\n';

export async function startLmtpGate(store: string): Promise<LmtpGate> {
  const pairs = new Set<net.Socket>();
  const releases: Array<() => void> = [];
  let armed = false;
  let released = false;
  let onHeld: () => void = () => undefined;
  const held = new Promise<void>((resolve) => (onHeld = resolve));
  const server = net.createServer((client) => {
    const upstream = net.connect(store);
    pairs.add(client).add(upstream);
    let holding = false;
    const kept: Buffer[] = [];
    // The last bytes of the previous chunk: a final dot may straddle two chunks.
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      const text = tail + chunk.toString('latin1');
      tail = text.slice(-(FINAL_DOT.length - 1));
      if (armed && !released && text.includes(FINAL_DOT)) {
        armed = false;
        holding = true;
        releases.push(() => {
          holding = false;
          for (const b of kept.splice(0)) client.write(b);
        });
        onHeld();
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (holding) kept.push(chunk);
      else client.write(chunk);
    });
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    for (const s of [client, upstream]) {
      s.on('error', end);
      s.on('close', () => {
        pairs.delete(s);
        end();
      });
    }
  });
  const socket = path.join(scratchDir('lmtp-gate'), 'lmtp.sock');
  server.listen(socket);
  await once(server, 'listening');
  return {
    socket,
    arm: () => {
      armed = true;
    },
    held,
    release: () => {
      released = true;
      for (const release of releases.splice(0)) release();
    },
    close: async () => {
      for (const s of pairs) s.destroy();
      server.close();
      await once(server, 'close');
    },
  };
}
