import { runCrashCampaign } from './crash-campaign.js';
import { formatExtractionBench, runExtractionBench } from './directory-extraction.js';
import { formatImapLoginBench, runImapLoginBench } from './imap-login.js';
import {
  formatLifecyclePlannerBench,
  formatLifecyclePolicyBench,
  runLifecyclePlannerBench,
  runLifecyclePolicyBench,
} from './lifecycle-policy.js';
import { runMxBench } from './mx-throughput.js';
import { formatRelayBench, runRelayBench } from './relay-throughput.js';
import { formatStartupBench, runStartupBench } from './startup.js';
import { runVsPostfix } from './vs-postfix.js';

/**
 * `npm run bench`: every benchmark, figures on stdout. Sizes via BENCH_MESSAGES, BENCH_CONNECTIONS.
 * `npm run bench -- crash [kills]`: the kill -9 campaign (exactly once into our store).
 * `npm run bench -- vs-postfix [--quick] [--relay] [--scenario <text>] [--cpu-prof <dir>]`: the
 * built gateway against Postfix configured the same way (only the configurations named like <text>;
 * a V8 CPU profile of the gateway into <dir>).
 * `npm run bench -- extraction` / `lifecycle` / `imap-login`: that benchmark alone, with its figures
 * against their targets (imap-login: BENCH_IMAP_BATCHES batch pairs of BENCH_IMAP_ROUNDS rounds per client;
 * BENCH_IMAP_TLS=full: clients never resume a TLS session).
 * `npm run bench -- startup`: `npm start` to ready (first and second start) and each `mssgw` command,
 * wall and CPU against their targets (BENCH_STARTUP_ROUNDS rounds, BENCH_CLI_RUNS runs per command;
 * BENCH_STARTUP_NPX=0 leaves out the `npx mssgw --help` run).
 */
const [only, arg] = process.argv.slice(2);
const extraction = async () =>
  console.log(
    formatExtractionBench(await runExtractionBench(Number(process.env.BENCH_EXTRACTION_LINES ?? 536_000))),
  );
const lifecycle = async () => {
  console.log(
    formatLifecyclePolicyBench(
      runLifecyclePolicyBench(Number(process.env.BENCH_LIFECYCLE_BALS ?? 1_000_000)),
    ),
  );
  console.log(
    formatLifecyclePlannerBench(
      await runLifecyclePlannerBench(Number(process.env.BENCH_LIFECYCLE_REGISTRY_BALS ?? 100_000)),
    ),
  );
};
const imapLogin = async () =>
  console.log(
    formatImapLoginBench(
      await runImapLoginBench({
        batches: Number(process.env.BENCH_IMAP_BATCHES ?? 6),
        roundsPerClient: Number(process.env.BENCH_IMAP_ROUNDS ?? 10),
        resumeTls: process.env.BENCH_IMAP_TLS !== 'full',
      }),
    ),
  );
const startup = async () =>
  console.log(
    formatStartupBench(
      await runStartupBench({
        rounds: Number(process.env.BENCH_STARTUP_ROUNDS ?? 2),
        cliRuns: Number(process.env.BENCH_CLI_RUNS ?? 5),
        npx: process.env.BENCH_STARTUP_NPX !== '0',
      }),
    ),
  );
if (only === 'extraction' || only === 'lifecycle' || only === 'imap-login') {
  await (only === 'extraction' ? extraction() : only === 'lifecycle' ? lifecycle() : imapLogin());
  process.exit(0);
}
if (only === 'startup') {
  await startup();
  process.exit(0);
}
if (only === 'crash') {
  const { ok, summary } = await runCrashCampaign(Number(arg ?? 100));
  console.log(`crash campaign: ${ok ? 'PASSED' : 'FAILED'}\n  ${summary}`);
  process.exit(ok ? 0 : 1);
}
if (only === 'vs-postfix') {
  const flags = process.argv.slice(3);
  const valueOf = (flag: string) => {
    const at = flags.indexOf(flag);
    return at >= 0 ? flags[at + 1] : undefined;
  };
  const scenario = valueOf('--scenario');
  const cpuProfileDir = valueOf('--cpu-prof');
  const ok = await runVsPostfix({
    quick: flags.includes('--quick'),
    ...(flags.includes('--relay') ? { only: 'relay' as const } : {}),
    ...(scenario ? { scenario } : {}),
    ...(cpuProfileDir ? { cpuProfileDir } : {}),
    say: (line) => console.log(line),
  });
  process.exit(ok ? 0 : 1);
}
if (only !== undefined) {
  console.error(
    `unknown benchmark ${only}; known: crash, vs-postfix, extraction, lifecycle, imap-login, startup`,
  );
  process.exit(2);
}

const messages = Number(process.env.BENCH_MESSAGES ?? 500);
const connections = Number(process.env.BENCH_CONNECTIONS ?? 4);

for (const size of [8 * 1024, 256 * 1024]) {
  const count = size > 64 * 1024 ? Math.max(50, Math.floor(messages / 5)) : messages;
  const r = await runMxBench(count, connections, size);
  console.log(
    [
      `mx: ${r.messages} messages of ${Math.round(r.sizeBytes / 1024)} KiB over ${r.connections} TLS connections`,
      `  accepted  ${r.acceptedPerSecond.toFixed(1)} msg/s; 250 latency p50 ${r.ackLatencyMs.p50} ms, p95 ${r.ackLatencyMs.p95} ms, p99 ${r.ackLatencyMs.p99} ms`,
      `  delivered ${r.deliveredPerSecond.toFixed(1)} msg/s; 250→store p50 ${r.deliveryLatencyMs.p50} ms, p95 ${r.deliveryLatencyMs.p95} ms, p99 ${r.deliveryLatencyMs.p99} ms`,
      `  peak RSS of the process (gateway and client) ${r.peakRssMiB.toFixed(0)} MiB`,
    ].join('\n'),
  );
}

console.log(formatRelayBench(await runRelayBench(messages, connections, 8 * 1024)));

await imapLogin();

await extraction();
await lifecycle();
await startup();
