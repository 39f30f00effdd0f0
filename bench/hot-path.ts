import { randomUUID } from 'node:crypto';
import { readFileSync, rmSync } from 'node:fs';
import type { BigIntStats } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import nodemailer from 'nodemailer';
import { Gateway } from '../src/app/index.js';
import type { SpoolEnvelope } from '../src/delivery/index.js';
import { createLogger } from '../src/observability/index.js';
import { benchConfig, benchRoot } from './bench-gateway.js';

/**
 * `node --import tsx bench/hot-path.ts <messages> <connections> <KiB> [reuse|new]`: what one MX
 * message costs the gateway on its hot path (issue #12 item 3), in-process with its embedded Redis
 * and Dovecot: fsyncs (FileHandle.sync calls of this process), Redis commands and client round
 * trips (INFO commandstats and stats of the gateway's own Redis), CPU of this process, per message
 * from the first acceptance to the last delivery. Loopback only, bounded in count.
 */

/** This process's fsyncs, counted as they are made, and the files among them fsynced twice. */
interface FsyncCounts {
  readonly files: number;
  readonly directories: number;
  /** Files (by device, inode and birth time) fsynced more than once. */
  readonly filesTwice: number;
}

/**
 * Counts this process's fsyncs: every durable write of the spool goes through FileHandle.sync. Each
 * call is passed through; the file it syncs is told apart by device, inode and birth time (an inode
 * number is reused once its file is removed), so that a file fsynced twice shows.
 */
async function countFsyncs(): Promise<() => FsyncCounts> {
  const probe = await open('/dev/null', 'r');
  const proto = Object.getPrototypeOf(probe) as {
    sync: () => Promise<void>;
    stat: (o: { bigint: true }) => Promise<BigIntStats>;
  };
  await probe.close();
  let files = 0;
  let directories = 0;
  const seen = new Map<string, number>();
  const sync = proto.sync;
  proto.sync = async function (this: typeof proto) {
    const st = await this.stat({ bigint: true });
    await sync.call(this);
    if (st.isDirectory()) directories += 1;
    else {
      files += 1;
      const key = `${st.dev}:${st.ino}:${st.birthtimeNs}`;
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
  };
  return () => ({ files, directories, filesTwice: [...seen.values()].filter((n) => n > 1).length });
}

function parseInfo(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const at = line.indexOf(':');
    if (at > 0) out.set(line.slice(0, at), line.slice(at + 1));
  }
  return out;
}

async function redisCounters(gw: Gateway): Promise<{ commands: Map<string, number>; processed: number }> {
  const stats = parseInfo(await gw.backends.redis.info('commandstats'));
  const commands = new Map<string, number>();
  for (const [key, value] of stats) {
    const calls = /calls=(\d+)/.exec(value);
    if (key.startsWith('cmdstat_') && calls) commands.set(key.slice(8), Number(calls[1]));
  }
  const processed = Number(parseInfo(await gw.backends.redis.info('stats')).get('total_commands_processed'));
  return { commands, processed };
}

const [messages = 200, connections = 20, kib = 8] = process.argv.slice(2, 5).map(Number);
const reuse = process.argv[5] !== 'new';
const root = benchRoot('hot-path');
const pkiDir = path.join(root, 'pki');
const p = (f: string) => path.join(pkiDir, f);
const config = benchConfig(root, {
  smtp: { mx: { host: '127.0.0.1', port: 0 }, submission: { enabled: false }, maxRecipients: 10 },
});
const fsyncs = await countFsyncs();
const gw = await Gateway.start(config, { logger: createLogger({ level: 'silent' }) });
try {
  const bal = `bench.${randomUUID().slice(0, 8)}@op.mssante.test`;
  await gw.registry.create(
    { address: bal, type: 'PER', owner: '810000000001' },
    { kind: 'system', id: 'bench' },
  );
  let delivered = 0;
  const allDelivered = new Promise<void>((resolve) => {
    gw.delivery.on('settled', (_env: SpoolEnvelope) => {
      delivered += 1;
      if (delivered === messages) resolve();
    });
  });
  const tls = {
    key: readFileSync(p('peer-trusted.key')),
    cert: readFileSync(p('peer-trusted.chain.pem')),
    ca: readFileSync(p('ca/root.crt')),
    servername: 'localhost',
  };
  const transport = () =>
    nodemailer.createTransport({
      ...(reuse ? { pool: true, maxConnections: 1, maxMessages: Infinity } : {}),
      host: '127.0.0.1',
      port: gw.addresses.mx!.port,
      secure: false,
      requireTLS: true,
      name: 'mx.peer.mssante.test',
      tls,
    });
  const body = 'Compte rendu de biologie.\r\n'.repeat(Math.max(1, Math.floor((kib * 1024) / 27)));
  const redisBefore = await redisCounters(gw);
  const fsyncsBefore = fsyncs();
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      let t = transport();
      for (let i = next++; i < messages; i = next++) {
        await t.sendMail({
          envelope: { from: 'labo@peer.mssante.test', to: [bal] },
          from: 'labo@peer.mssante.test',
          to: bal,
          subject: `bench ${i}`,
          text: body,
        });
        if (!reuse) {
          t.close();
          t = transport();
        }
      }
      t.close();
    }),
  );
  await allDelivered;
  const seconds = (performance.now() - started) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  const redisAfter = await redisCounters(gw);
  const perMessage = (n: number) => (n / messages).toFixed(2);
  const after = fsyncs();
  const spent = {
    files: after.files - fsyncsBefore.files,
    directories: after.directories - fsyncsBefore.directories,
    filesTwice: after.filesTwice - fsyncsBefore.filesTwice,
  };
  // Issue #12 item 3: at most 2.5 fsyncs per message with 1 connection, 1.5 with 20, none twice.
  const limit = connections >= 20 ? 1.5 : connections === 1 ? 2.5 : undefined;
  const target = '≤ 2.5 at 1 connection, ≤ 1.5 at 20, no file twice';
  const perMessageFsyncs = (spent.files + spent.directories) / messages;
  const met =
    limit === undefined
      ? 'none set for this many connections'
      : perMessageFsyncs <= limit && spent.filesTwice === 0
        ? `met (≤ ${limit})`
        : `NOT met (≤ ${limit})`;
  const byCommand = [...redisAfter.commands]
    .map(([c, n]) => [c, n - (redisBefore.commands.get(c) ?? 0)] as const)
    .filter(([c, n]) => n > 0 && c !== 'info')
    .sort((a, b) => b[1] - a[1]);
  console.log(
    [
      `hot path: ${messages} messages of ${kib} KiB over ${connections} connections (${reuse ? 'reused' : 'one per message'}); load ${readFileSync('/proc/loadavg', 'utf8').trim()}`,
      `  delivered ${(messages / seconds).toFixed(1)} msg/s; CPU of the process (gateway and client) ${((cpu.user + cpu.system) / 1000 / messages).toFixed(1)} ms/msg`,
      `  fsyncs per message ${perMessage(spent.files + spent.directories)} (files ${perMessage(spent.files)}, ` +
        `directories ${perMessage(spent.directories)}); target ${target}: ${met}; ` +
        `files fsynced more than once: ${spent.filesTwice}`,
      `  Redis commands per message ${perMessage(redisAfter.processed - redisBefore.processed - 2)} (${byCommand.map(([c, n]) => `${c} ${perMessage(n)}`).join(', ') || 'none'})`,
    ].join('\n'),
  );
} finally {
  await gw.stop();
  rmSync(root, { recursive: true, force: true });
}
