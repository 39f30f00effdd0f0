import { spawn } from 'node:child_process';
import { type AddressInfo, type Socket, createServer, connect } from 'node:net';
import { describe, expect, it } from 'vitest';
import { renderMainCf, renderMasterCf } from '../../bench/postfix.js';
import { median, processTreeCpuMs } from '../../bench/stats.js';
import { connectionsTo } from '../../bench/vs-postfix.js';

describe('vs-postfix benchmark: private Postfix configuration', () => {
  const spec = {
    dir: '/tmp/bench-x/postfix-mx',
    listener: { port: 40123, options: { smtpd_tls_security_level: 'encrypt' } },
    main: { virtual_transport: 'lmtp:unix:/tmp/bench-x/lmtp', smtpd_tls_req_ccert: 'yes' },
  };

  it('keeps every path of the instance in its own folder, never the system one', () => {
    const main = renderMainCf(spec);
    expect(main).toContain('config_directory = /tmp/bench-x/postfix-mx/etc\n');
    expect(main).toContain('queue_directory = /tmp/bench-x/postfix-mx/queue\n');
    expect(main).toContain('data_directory = /tmp/bench-x/postfix-mx/data\n');
    expect(main).toContain('maillog_file = /tmp/bench-x/postfix-mx/maillog\n');
    expect(main).toContain('maillog_file_prefixes = /tmp/bench-x/postfix-mx\n');
    expect(main).toContain('virtual_transport = lmtp:unix:/tmp/bench-x/lmtp\n');
    expect(main).toContain('smtpd_tls_req_ccert = yes\n');
    expect(main).not.toMatch(/\/etc\/postfix|\/var\/spool\/postfix|\/var\/lib\/postfix/);
    // Each setting once: a later duplicate would silently win.
    const keys = main
      .trim()
      .split('\n')
      .map((l) => l.split(' = ')[0]);
    expect(new Set(keys).size).toBe(keys.length);
  });

  it('listens on its loopback port only, without chroot, with postlog for its log file', () => {
    const master = renderMasterCf(spec);
    const lines = master.trim().split('\n');
    expect(lines[0]).toBe('127.0.0.1:40123 inet n - n - - smtpd');
    expect(lines[1]).toBe('  -o smtpd_tls_security_level=encrypt');
    expect(lines.filter((l) => / inet /.test(l))).toHaveLength(1);
    expect(lines.some((l) => /^postlog\s+unix-dgram\b.*postlogd$/.test(l))).toBe(true);
    expect(lines.some((l) => /^tlsproxy\s+unix\b.*tlsproxy$/.test(l))).toBe(true);
    // Column 5 (chroot) is "n" for every service.
    for (const l of lines.filter((x) => !x.startsWith(' '))) expect(l.split(/\s+/)[4]).toBe('n');
  });
});

describe('vs-postfix benchmark: figures', () => {
  it('takes the median of an odd or even count', () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBe(0);
  });

  it('counts the CPU of a child that exited and was reaped', async () => {
    const before = processTreeCpuMs(process.pid);
    // The child burns at least 300 ms of its own CPU, however busy the machine, then exits.
    const child = spawn(process.execPath, [
      '-e',
      'while ((process.cpuUsage().user + process.cpuUsage().system) / 1000 < 300) {}',
    ]);
    await new Promise((resolve) => child.on('exit', resolve));
    const after = processTreeCpuMs(process.pid);
    // /proc counts in 10 ms clock ticks and truncates user and system time each: up to 20 ms less.
    expect(after - before).toBeGreaterThanOrEqual(280);
  });

  it('counts the connections a process holds to one port (the relay to the sink)', async () => {
    const accepted: Socket[] = [];
    const server = createServer((s) => accepted.push(s));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const clients = await Promise.all(
      Array.from(
        { length: 3 },
        () =>
          new Promise<Socket>((resolve) => {
            const c = connect(port, '127.0.0.1', () => resolve(c));
          }),
      ),
    );
    try {
      // Only the client ends count (towards the port), not the server's accepted ends.
      expect(connectionsTo([process.pid], port)).toBe(3);
      expect(connectionsTo([process.pid], port === 65535 ? 1 : port + 1)).toBe(0);
    } finally {
      clients.forEach((c) => c.destroy());
      accepted.forEach((s) => s.destroy());
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
