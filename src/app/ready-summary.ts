/** What the ready summary needs to know, taken from the configuration and the started gateway. */
export interface ReadySummaryInput {
  readonly mode: string;
  readonly dataDir: string;
  readonly pkiDir: string;
  /** `{ mx: '127.0.0.1:2525', ... }` as describeAddresses gives it. */
  readonly listening: Readonly<Record<string, string>>;
  /** Which backends the gateway started itself. */
  readonly embedded: { readonly redis: boolean; readonly store: boolean };
  readonly startedInMs: number;
}

const LABELS: Readonly<Record<string, string>> = {
  mx: 'SMTP MX (peer operators, mutual TLS)',
  submission: 'submission (STARTTLS)',
  submissionTls: 'submission (implicit TLS)',
  imap: 'IMAP (STARTTLS)',
  imapTls: 'IMAP (implicit TLS)',
  metrics: 'metrics and health',
  admin: 'admin API (mssgw CLI)',
  portal: 'portal',
};

/**
 * The few lines a person starting the gateway on a terminal needs: where it listens, where its data
 * is, how to get a development token, how to stop. Printed only on a terminal: the JSON log lines
 * stay the machine-readable record (and the only output when stdout is a pipe, as in tests and CI).
 */
export function readySummary(input: ReadySummaryInput): string {
  const width = Math.max(...Object.keys(input.listening).map((k) => (LABELS[k] ?? k).length), 0);
  const lines = [
    '',
    `mssgw ready in ${(input.startedInMs / 1000).toFixed(1)} s (mode ${input.mode}${embeddedNote(input.embedded)})`,
    ...Object.entries(input.listening).map(([k, where]) => `  ${(LABELS[k] ?? k).padEnd(width)}  ${where}`),
    `  data directory  ${input.dataDir}`,
  ];
  if (input.mode === 'development') {
    lines.push(
      `  development PKI ${input.pkiDir} (never for production; peer-trusted.* acts as a whitelisted peer)`,
      '  a token for XOAUTH2/OAUTHBEARER: bin/mssgw.js dev-token --subject 810000000001',
    );
  }
  lines.push(
    // bin/mssgw.js rather than npx mssgw: npx installs this package into its cache before each call
    // (seconds; a first call of a fresh clone took 98 s of wall time at load 15).
    '  administer: bin/mssgw.js --help · stop: Ctrl-C (or SIGTERM), in-flight work is finished first',
    '',
  );
  return lines.join('\n');
}

function embeddedNote(embedded: ReadySummaryInput['embedded']): string {
  const own = [embedded.redis ? 'Redis' : '', embedded.store ? 'Dovecot' : ''].filter(Boolean);
  return own.length === 0 ? '' : `, embedded ${own.join(' and ')}`;
}
