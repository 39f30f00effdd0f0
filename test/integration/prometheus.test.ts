import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Gateway } from '../../src/app/index.js';
import { scratchDir, startTestGateway } from '../helpers/gateway.js';
import {
  type RunningPrometheus,
  dashboardExpressions,
  metricNamesIn,
  promtool,
  ruleExpressions,
  startPrometheus,
} from '../helpers/prometheus.js';

/**
 * The shipped dashboard and alert rules (deploy/) against a real Prometheus scraping a real gateway:
 * every metric they use must exist, the rules must load and evaluate, every panel query must parse.
 */

const deploy = path.resolve(import.meta.dirname, '../../deploy');
const rulesFile = path.join(deploy, 'prometheus/mssgw-alerts.yml');
const rulesTestFile = path.join(deploy, 'prometheus/mssgw-alerts.test.yml');
const scrapeExample = path.join(deploy, 'prometheus/prometheus.yml');
const dashboardFile = path.join(deploy, 'grafana/mssgw-dashboard.json');

/** Grafana's variables, replaced by what they would be with "All" selected. */
function withoutGrafanaVariables(expr: string): string {
  return expr
    .replaceAll('$__rate_interval', '1m')
    .replaceAll('$__interval', '1m')
    .replaceAll('$job', '.+')
    .replaceAll('$instance', '.+');
}

describe('dashboard and alert rules against a real Prometheus', () => {
  let gateway: Gateway;
  let prometheus: RunningPrometheus;

  beforeAll(async () => {
    gateway = await startTestGateway();
    const metrics = gateway.addresses.metrics!;
    prometheus = await startPrometheus({
      dir: scratchDir('prometheus'),
      targets: [`127.0.0.1:${metrics.port}`],
      ruleFiles: [rulesFile],
    });
    await prometheus.waitForScrape();
  });

  afterAll(async () => {
    await prometheus?.stop();
    await gateway?.stop();
  });

  it('finds every mssgw_* metric the dashboard and the rules use in the scraped gateway', async () => {
    const uses = [...ruleExpressions(rulesFile), ...dashboardExpressions(dashboardFile)];
    const used = new Map<string, string>();
    for (const { where, expr } of uses) for (const name of metricNamesIn(expr)) used.set(name, where);
    // Sanity: the parsing found what the files are about.
    expect(used.size).toBeGreaterThan(30);
    expect(used.has('mssgw_redis_up')).toBe(true);

    // Metadata lists metrics with no sample yet (a labelled counter never incremented); series names
    // list histograms as _bucket/_sum/_count.
    const exported = new Set([...(await prometheus.metadataNames()), ...(await prometheus.seriesNames())]);
    const exists = (name: string) =>
      exported.has(name) || ['_bucket', '_sum', '_count'].some((s) => exported.has(name + s));
    // The check can fail: a name nobody exports is reported.
    expect(exists('mssgw_no_such_metric_total')).toBe(false);
    const missing = [...used].filter(([name]) => !exists(name)).map(([name, where]) => `${name} (${where})`);
    expect(missing, `metrics used but not exported:\n  ${missing.join('\n  ')}`).toEqual([]);
  });

  it('loads and evaluates every alert rule without error', async () => {
    const rules = await prometheus.waitForRuleEvaluation();
    expect(rules.length).toBe(ruleExpressions(rulesFile).length);
    const broken = rules.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.lastError ?? r.health}`);
    expect(broken).toEqual([]);
  });

  it('accepts every dashboard panel query', async () => {
    const queries = dashboardExpressions(dashboardFile).filter((q) => q.where.startsWith('panel '));
    expect(queries.length).toBeGreaterThan(40);
    const refused: string[] = [];
    for (const { where, expr } of queries) {
      const q = encodeURIComponent(withoutGrafanaVariables(expr));
      await prometheus.api(`/api/v1/query?query=${q}`).catch((err: unknown) => {
        refused.push(`${where}: ${String(err)}`);
      });
    }
    expect(refused).toEqual([]);
  });

  it('sees the gateway as up and reads its own gauges', async () => {
    const data = await prometheus.api<{
      result: Array<{ metric: Record<string, string>; value: [number, string] }>;
    }>(`/api/v1/query?query=${encodeURIComponent('mssgw_redis_up{job="mssgw"}')}`);
    expect(data.result.map((r) => r.value[1])).toEqual(['1']);
  });
});

describe('metric names in PromQL', () => {
  it('finds mssgw_* names, without the series suffixes of histograms', () => {
    const expr =
      'histogram_quantile(0.9, sum by (le) (rate(mssgw_a_latency_seconds_bucket{job="x"}[5m]))) / ' +
      'on() group_left mssgw_b_total + up + mssgw_c_seconds_count + mssgw_b_total';
    expect(metricNamesIn(expr)).toEqual(['mssgw_a_latency_seconds', 'mssgw_b_total', 'mssgw_c_seconds']);
  });
});

describe('promtool', () => {
  it('passes check rules, the rules unit tests and check config on the scrape example', () => {
    const check = promtool(['check', 'rules', rulesFile]);
    expect(check.output).toMatch(/SUCCESS: \d+ rules found/);
    expect(check.status).toBe(0);
    const unit = promtool(['test', 'rules', path.basename(rulesTestFile)], path.dirname(rulesTestFile));
    expect(unit.output).toMatch(/SUCCESS/);
    expect(unit.status).toBe(0);
    const config = promtool(['check', 'config', scrapeExample]);
    expect(config.output).toMatch(/is valid prometheus config file syntax/);
    expect(config.status).toBe(0);
  });
});
