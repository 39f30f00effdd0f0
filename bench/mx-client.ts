import { readFileSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import nodemailer from 'nodemailer';

/**
 * The sending side of bench/mx-throughput.ts, in a worker thread of its own: nodemailer's CPU (its
 * TLS included) is then this thread's, read from /proc/thread-self/stat, and the gateway's is the
 * process's less this thread's. Sends the warm-up messages, posts
 * `warm` and waits for `go` (the parent's CPU window opens in between), then posts one `ack` per 250 (its latency) and `done` with
 * the CPU this thread spent sending.
 */
export interface MxClientJob {
  readonly port: number;
  readonly messages: number;
  /** Messages sent first, unmeasured (JIT, connections, pools); `warm` follows their last 250. */
  readonly warmup: number;
  readonly connections: number;
  readonly sizeBytes: number;
  /** One connection kept per worker, or a new connection (and TLS handshake) per message. */
  readonly reuse: boolean;
  readonly to: string;
  readonly tls: { readonly key: string; readonly cert: string; readonly ca: string };
}

export type MxClientMessage =
  | { readonly kind: 'warm' }
  | { readonly kind: 'ack'; readonly ms: number }
  | { readonly kind: 'done'; readonly cpuMs: number }
  | { readonly kind: 'failed'; readonly error: string };

/** CPU time of the calling thread (user + system), in ms; clock ticks are 1/100 s on Linux. */
export function threadCpuMs(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14 and 15 of proc(5) (utime, stime) are the 12th and 13th after the command name.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function run(
  job: MxClientJob,
  post: (m: MxClientMessage) => void,
  go: Promise<unknown>,
): Promise<void> {
  const tls = {
    key: readFileSync(job.tls.key),
    cert: readFileSync(job.tls.cert),
    ca: readFileSync(job.tls.ca),
    servername: 'localhost',
  };
  const transport = () =>
    nodemailer.createTransport({
      ...(job.reuse ? { pool: true, maxConnections: 1, maxMessages: Infinity } : {}),
      host: '127.0.0.1',
      port: job.port,
      secure: false,
      requireTLS: true,
      name: 'mx.peer.mssante.test',
      tls,
    });
  const body = 'Compte rendu de biologie.\r\n'.repeat(Math.max(1, Math.floor(job.sizeBytes / 27)));
  const transports = Array.from({ length: job.connections }, transport);
  const send = async (count: number, onAck: (ms: number) => void): Promise<void> => {
    let next = 0;
    await Promise.all(
      transports.map(async (_, slot) => {
        for (let i = next++; i < count; i = next++) {
          const t0 = performance.now();
          await transports[slot]!.sendMail({
            envelope: { from: 'labo@peer.mssante.test', to: [job.to] },
            from: 'labo@peer.mssante.test',
            to: job.to,
            subject: `bench ${i}`,
            headers: { 'X-MSS-NIL': 'BENCH 1.0' },
            text: body,
          });
          onAck(Math.round(performance.now() - t0));
          if (!job.reuse) {
            transports[slot]!.close();
            transports[slot] = transport();
          }
        }
      }),
    );
  };
  await send(job.warmup, () => undefined);
  post({ kind: 'warm' });
  await go;
  const cpu0 = threadCpuMs();
  await send(job.messages, (ms) => post({ kind: 'ack', ms }));
  for (const t of transports) t.close();
  post({ kind: 'done', cpuMs: threadCpuMs() - cpu0 });
}

if (parentPort) {
  const port = parentPort;
  const go = new Promise((resolve) => port.once('message', resolve));
  run(workerData as MxClientJob, (m) => port.postMessage(m), go).catch((err: unknown) =>
    port.postMessage({ kind: 'failed', error: (err as Error).message } satisfies MxClientMessage),
  );
}
