import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { freePort } from './free-port.js';

/**
 * A real Prometheus (Debian package `prometheus`) for tests: its own configuration and storage in a
 * scratch folder, an ephemeral loopback port, a 1 s scrape and rule evaluation interval. The package's
 * own service is never involved: the binary is started directly and stopped by `stop()`.
 */

export const PROMETHEUS_BINARY = '/usr/bin/prometheus';
export const PROMTOOL_BINARY = '/usr/bin/promtool';

export interface PrometheusOptions {
  /** Scratch folder for prometheus.yml and the TSDB. */
  readonly dir: string;
  /** `host:port` of each /metrics endpoint, all under job `jobName`. */
  readonly targets: readonly string[];
  /** Default `mssgw` (what the shipped alert rules match). */
  readonly jobName?: string;
  /** Rule files to load (absolute paths). */
  readonly ruleFiles?: readonly string[];
}

export interface RunningPrometheus {
  readonly url: string;
  /** GET on the HTTP API; throws unless `status` is `success`. */
  api<T>(pathAndQuery: string): Promise<T>;
  /** Resolves once every target has been scraped successfully at least once. */
  waitForScrape(timeoutMs?: number): Promise<void>;
  /** Resolves once every loaded rule has been evaluated at least once; returns them. */
  waitForRuleEvaluation(timeoutMs?: number): Promise<PrometheusRule[]>;
  /** Metric names of the target metadata (also those with no sample yet: HELP/TYPE lines only). */
  metadataNames(): Promise<Set<string>>;
  /** Every series name stored (`__name__` values, histograms as _bucket/_sum/_count). */
  seriesNames(): Promise<Set<string>>;
  stop(): Promise<void>;
}

export interface PrometheusRule {
  readonly name: string;
  readonly type: 'alerting' | 'recording';
  readonly health: 'ok' | 'err' | 'unknown';
  readonly lastError?: string;
  readonly lastEvaluation: string;
}

interface ApiEnvelope<T> {
  status: 'success' | 'error';
  data: T;
  error?: string;
}

const POLL_MS = 100;

/** Polls `probe` until it returns a value other than undefined, or the deadline passes. */
async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `Prometheus: ${what} not reached in ${timeoutMs} ms${last instanceof Error ? ` (${last.message})` : ''}`,
      );
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function writeConfig(options: PrometheusOptions): string {
  const file = path.join(options.dir, 'prometheus.yml');
  const config = {
    global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
    rule_files: [...(options.ruleFiles ?? [])],
    scrape_configs: [
      { job_name: options.jobName ?? 'mssgw', static_configs: [{ targets: [...options.targets] }] },
    ],
  };
  // JSON is YAML: no serializer needed.
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

function startProcess(options: PrometheusOptions, configFile: string, port: number) {
  const child = spawn(
    PROMETHEUS_BINARY,
    [
      `--config.file=${configFile}`,
      `--storage.tsdb.path=${path.join(options.dir, 'data')}`,
      '--storage.tsdb.retention.time=1h',
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr = (stderr + chunk).slice(-8192);
  });
  const exited = new Promise<{ code: number | null }>((resolve) => {
    child.once('exit', (code) => resolve({ code }));
  });
  return { child, exited, stderr: () => stderr };
}

async function stopProcess(child: ChildProcess, exited: Promise<unknown>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

export async function startPrometheus(options: PrometheusOptions): Promise<RunningPrometheus> {
  mkdirSync(options.dir, { recursive: true });
  const configFile = writeConfig(options);
  // freePort() then listen is racy: another process may take the port meanwhile; try a few.
  for (let attempt = 1; ; attempt += 1) {
    const port = await freePort();
    const proc = startProcess(options, configFile, port);
    // A worker that dies must not leave Prometheus running.
    const reap = () => proc.child.kill('SIGKILL');
    process.once('exit', reap);
    const url = `http://127.0.0.1:${port}`;
    const ready = until('readiness', 30_000, async () => {
      if (proc.child.exitCode !== null) throw new Error('exited');
      const res = await fetch(`${url}/-/ready`);
      return res.ok ? true : undefined;
    });
    const outcome = await Promise.race([ready.then(() => 'ready' as const), proc.exited]);
    if (outcome === 'ready') {
      return running(url, proc, () => process.off('exit', reap));
    }
    await ready.catch(() => undefined);
    process.off('exit', reap);
    if (attempt >= 3 || !/address already in use/.test(proc.stderr())) {
      throw new Error(`prometheus exited with ${String(outcome.code)}:\n${proc.stderr()}`);
    }
  }
}

function running(url: string, proc: ReturnType<typeof startProcess>, release: () => void): RunningPrometheus {
  const api = async <T>(pathAndQuery: string): Promise<T> => {
    const res = await fetch(`${url}${pathAndQuery}`);
    const body = (await res.json()) as ApiEnvelope<T>;
    if (body.status !== 'success') throw new Error(`${pathAndQuery}: ${body.error ?? res.status}`);
    return body.data;
  };
  return {
    url,
    api,
    async waitForScrape(timeoutMs = 30_000) {
      await until('a successful scrape of every target', timeoutMs, async () => {
        const data = await api<{ activeTargets: Array<{ health: string; lastError: string }> }>(
          '/api/v1/targets?state=active',
        );
        const targets = data.activeTargets;
        return targets.length > 0 && targets.every((t) => t.health === 'up') ? true : undefined;
      });
    },
    async waitForRuleEvaluation(timeoutMs = 30_000) {
      return until('an evaluation of every rule', timeoutMs, async () => {
        const data = await api<{ groups: Array<{ rules: PrometheusRule[] }> }>('/api/v1/rules');
        const rules = data.groups.flatMap((g) => g.rules);
        const evaluated = rules.every((r) => !r.lastEvaluation.startsWith('0001-'));
        return rules.length > 0 && evaluated ? rules : undefined;
      });
    },
    async metadataNames() {
      const data = await api<Array<{ metric: string }>>('/api/v1/targets/metadata');
      return new Set(data.map((m) => m.metric));
    },
    async seriesNames() {
      return new Set(await api<string[]>('/api/v1/label/__name__/values'));
    },
    async stop() {
      await stopProcess(proc.child, proc.exited);
      release();
    },
  };
}

/** `promtool <args>`; returns its exit status and output. */
export function promtool(args: readonly string[], cwd?: string): { status: number | null; output: string } {
  const r = spawnSync(PROMTOOL_BINARY, [...args], { encoding: 'utf8', ...(cwd ? { cwd } : {}) });
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

const METRIC = /\bmssgw_[a-zA-Z0-9_]*[a-zA-Z0-9]/g;
/** Series a histogram or summary adds to its name. */
const SERIES_SUFFIX = /_(bucket|sum|count)$/;

/** The `mssgw_*` metric names a PromQL expression uses, histogram/summary suffixes stripped. */
export function metricNamesIn(expr: string): string[] {
  return [...new Set((expr.match(METRIC) ?? []).map((n) => n.replace(SERIES_SUFFIX, '')))];
}

/** Every PromQL expression of an alert/recording rules file, with the rule it belongs to. */
export function ruleExpressions(file: string): Array<{ where: string; expr: string }> {
  const doc = parseYaml(readFileSync(file, 'utf8')) as {
    groups: Array<{ name: string; rules: Array<{ alert?: string; record?: string; expr: string }> }>;
  };
  return doc.groups.flatMap((g) =>
    g.rules.map((r) => ({ where: `${g.name}/${r.alert ?? r.record ?? '?'}`, expr: String(r.expr) })),
  );
}

interface GrafanaPanel {
  title?: string;
  targets?: Array<{ expr?: string }>;
  panels?: GrafanaPanel[];
}

/** Every PromQL expression of a Grafana dashboard: panel targets (rows included) and variable queries. */
export function dashboardExpressions(file: string): Array<{ where: string; expr: string }> {
  const doc = JSON.parse(readFileSync(file, 'utf8')) as {
    panels?: GrafanaPanel[];
    templating?: { list?: Array<{ name: string; query?: string | { query?: string } }> };
  };
  const fromPanels = (panels: readonly GrafanaPanel[]): Array<{ where: string; expr: string }> =>
    panels.flatMap((p) => [
      ...(p.targets ?? []).flatMap((t) =>
        t.expr ? [{ where: `panel ${p.title ?? '?'}`, expr: t.expr }] : [],
      ),
      ...fromPanels(p.panels ?? []),
    ]);
  const variables = (doc.templating?.list ?? []).flatMap((v) => {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    return q ? [{ where: `variable ${v.name}`, expr: q }] : [];
  });
  return [...fromPanels(doc.panels ?? []), ...variables];
}
