import { InvalidArgumentError, type Command } from 'commander';
import type { Config, PublicService } from '../config/index.js';
import { configModule } from './cli-config.js';
import type { CliIo } from './cli-context.js';

/**
 * `mssgw dns records`: the DNS SRV records by which mail clients find our submission and IMAP
 * services (RFC 6186; implicit TLS per RFC 8314 §5.1, preferred by a lower priority), one set per
 * domain of ours, in zone-file syntax. A disabled service is published with the target "." (RFC
 * 6186 §4: "not available").
 */
export function registerDnsCommands(program: Command, io: CliIo): void {
  const dns = program.command('dns').description('DNS records to publish for our domains');
  dns
    .command('records')
    .description('print the RFC 6186 SRV records of each domain, ready to paste into its zone file')
    .option('--ttl <seconds>', 'TTL of each record (default 3600)', parseTtl, 3600)
    .action((opts: { ttl: number }) => {
      io.stdout(srvRecords(io.loadConfig(io.env), opts.ttl));
    });
}

/** Implicit TLS first (RFC 8314 §5.1), STARTTLS as a fallback. */
const IMPLICIT_PRIORITY = 0;
const STARTTLS_PRIORITY = 10;

function srvRecords(config: Pick<Config, 'domains' | 'imap' | 'smtp'>, ttl: number): string {
  const { imap, submission } = configModule().publicClientAccess(config);
  const out: string[] = [];
  for (const domain of config.domains) {
    const origin = fqdn(domain);
    const rows: Array<[string, number, number, PublicService]> = [
      ['_submissions._tcp', IMPLICIT_PRIORITY, submission.tlsPort, submission],
      ['_submission._tcp', STARTTLS_PRIORITY, submission.starttlsPort, submission],
      ['_imaps._tcp', IMPLICIT_PRIORITY, imap.tlsPort, imap],
      ['_imap._tcp', STARTTLS_PRIORITY, imap.starttlsPort, imap],
    ];
    out.push(`; ${domain}: mail client access (RFC 6186, RFC 8314)`);
    for (const [service, priority, port, s] of rows) {
      const name = `${service}.${origin}`.padEnd(`_submissions._tcp.${origin}`.length);
      out.push(
        s.enabled
          ? `${name} ${ttl} IN SRV ${priority} 1 ${port} ${fqdn(s.host)}`
          : `${name} ${ttl} IN SRV 0 0 0 .`,
      );
    }
  }
  return `${out.join('\n')}\n`;
}

function fqdn(name: string): string {
  const ascii = new URL(`http://${name}`).hostname; // IDNA: zone files hold A-labels.
  return ascii.endsWith('.') ? ascii : `${ascii}.`;
}

function parseTtl(value: string): number {
  if (/^\d+$/.test(value) && Number(value) <= 2_147_483_647) return Number(value);
  throw new InvalidArgumentError('give a TTL in seconds, e.g. 3600');
}
