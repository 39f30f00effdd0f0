import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { GatewayError } from '../errors/index.js';
import { ConfigSchema, ConfigSchemaChecked, type Config } from './schema.js';

export interface ConfigIssue {
  /** Dotted key path, e.g. `smtp.mx.port`. */
  readonly key: string;
  readonly message: string;
  /** Where the bad value came from: a file path or an environment variable. */
  readonly source?: string;
}

export class ConfigError extends GatewayError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[]) {
    super(
      'CONFIG_INVALID',
      `invalid configuration (${issues.length} problem${issues.length === 1 ? '' : 's'}):\n` +
        issues.map((i) => `  - ${i.key}: ${i.message}${i.source ? ` [${i.source}]` : ''}`).join('\n'),
      { issues },
    );
    this.issues = issues;
  }
}

export interface LoadConfigOptions {
  /** Folder with default.{yaml,yml,json} and local.{yaml,yml,json}; default `./config`. */
  readonly configDir?: string;
  /** Extra files merged last (MSSGW_CONFIG, comma separated, when not given). */
  readonly files?: readonly string[];
  /** Environment to read overrides from; default process.env. */
  readonly env?: Readonly<Record<string, string | undefined>>;
  /** Values merged after files and environment (tests). */
  readonly overrides?: Record<string, unknown>;
  readonly cwd?: string;
}

type Tree = Record<string, unknown>;

/** MSSGW_ variables that are not settings: where to find files, and the CLI's own. */
const NOT_SETTINGS = new Set([
  'MSSGW_CONFIG',
  'MSSGW_CONFIG_DIR',
  'MSSGW_ADMIN_URL',
  'MSSGW_SKIP_SYSTEM_DEPS',
]);

function isTree(v: unknown): v is Tree {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function deepMerge(base: Tree, over: Tree): Tree {
  const out: Tree = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const cur = out[k];
    out[k] = isTree(cur) && isTree(v) ? deepMerge(cur, v) : v;
  }
  return out;
}

function readConfigFile(file: string): Tree {
  const text = readFileSync(file, 'utf8');
  let parsed: unknown;
  try {
    parsed = file.endsWith('.json') ? JSON.parse(text) : parseYaml(text);
  } catch (err) {
    throw new ConfigError([
      { key: '(file)', message: `cannot parse: ${(err as Error).message}`, source: file },
    ]);
  }
  if (parsed === null || parsed === undefined) return {};
  if (!isTree(parsed))
    throw new ConfigError([{ key: '(file)', message: 'top level must be a mapping', source: file }]);
  return parsed;
}

function flattenKeys(tree: Tree, prefix = ''): string[] {
  return Object.entries(tree).flatMap(([k, v]) =>
    isTree(v) ? [`${prefix}${k}`, ...flattenKeys(v, `${prefix}${k}.`)] : [`${prefix}${k}`],
  );
}

function envName(keyPath: readonly string[]): string {
  return 'MSSGW_' + keyPath.map((k) => k.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toUpperCase()).join('__');
}

/** Walks the schema to list every leaf key path with the schema that parses it. */
function leafPaths(schema: z.ZodType, prefix: string[] = []): Array<[string[], z.ZodType]> {
  const inner = unwrap(schema);
  if (inner instanceof z.ZodObject) {
    return Object.entries(inner.shape as Record<string, z.ZodType>).flatMap(([k, s]) =>
      leafPaths(s, [...prefix, k]),
    );
  }
  return [[prefix, inner]];
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodPrefault || s instanceof z.ZodOptional) {
      s = s.unwrap() as z.ZodType;
    } else {
      return s;
    }
  }
}

function coerceEnv(raw: string, leaf: z.ZodType): unknown {
  if (leaf instanceof z.ZodNumber) return raw.trim() === '' ? raw : Number(raw);
  if (leaf instanceof z.ZodBoolean) {
    if (/^(true|1|yes|on)$/i.test(raw)) return true;
    if (/^(false|0|no|off)$/i.test(raw)) return false;
    return raw;
  }
  if (leaf instanceof z.ZodArray) {
    const t = raw.trim();
    if (t.startsWith('[')) {
      try {
        return JSON.parse(t) as unknown;
      } catch {
        return raw;
      }
    }
    return t === '' ? [] : t.split(',').map((s) => s.trim());
  }
  if (leaf instanceof z.ZodUnion) {
    try {
      return JSON.parse(raw) as unknown;
    } catch {
      return raw;
    }
  }
  return raw;
}

function setPath(tree: Tree, keyPath: readonly string[], value: unknown): void {
  let node = tree;
  keyPath.slice(0, -1).forEach((k) => {
    const next = node[k];
    if (!isTree(next)) node[k] = {};
    node = node[k] as Tree;
  });
  node[keyPath[keyPath.length - 1]!] = value;
}

/** Every environment variable the schema understands, with its key path (for docs and `config env`). */
export function environmentVariables(): Array<{ name: string; key: string }> {
  return leafPaths(ConfigSchema).map(([p]) => ({ name: envName(p), key: p.join('.') }));
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    Object.values(value as object).forEach((v: unknown) => deepFreeze(v));
    Object.freeze(value);
  }
  return value;
}

/**
 * Loads, merges and validates the configuration; reports every problem at once with its key path and
 * source, and returns a frozen result. Throws ConfigError.
 */
export function loadConfig(options: LoadConfigOptions = {}): Config {
  const env = options.env ?? process.env;
  const cwd = options.cwd ?? process.cwd();
  const configDir = path.resolve(cwd, options.configDir ?? env.MSSGW_CONFIG_DIR ?? 'config');
  const files: string[] = [];
  for (const base of ['default', 'local']) {
    for (const ext of ['yaml', 'yml', 'json']) {
      const f = path.join(configDir, `${base}.${ext}`);
      if (existsSync(f)) files.push(f);
    }
  }
  const extra = options.files ?? (env.MSSGW_CONFIG ? env.MSSGW_CONFIG.split(',').filter(Boolean) : []);
  const issues: ConfigIssue[] = [];
  for (const f of extra) {
    const abs = path.resolve(cwd, f);
    if (existsSync(abs)) files.push(abs);
    else issues.push({ key: '(file)', message: 'configuration file not found', source: abs });
  }

  let tree: Tree = {};
  const sources = new Map<string, string>();
  for (const f of files) {
    try {
      const t = readConfigFile(f);
      tree = deepMerge(tree, t);
      for (const key of flattenKeys(t)) sources.set(key, f);
    } catch (err) {
      if (err instanceof ConfigError) issues.push(...err.issues);
      else throw err;
    }
  }
  for (const [p, leaf] of leafPaths(ConfigSchema)) {
    const name = envName(p);
    const raw = env[name];
    if (raw !== undefined) {
      setPath(tree, p, coerceEnv(raw, leaf));
      sources.set(p.join('.'), name);
    }
  }
  for (const name of Object.keys(env)) {
    if (name.startsWith('MSSGW_') && !NOT_SETTINGS.has(name)) {
      if (!leafPaths(ConfigSchema).some(([p]) => envName(p) === name)) {
        issues.push({
          key: name,
          message: 'unknown environment variable (no such setting)',
          source: 'environment',
        });
      }
    }
  }
  if (options.overrides) tree = deepMerge(tree, options.overrides);

  const result = ConfigSchemaChecked.safeParse(tree);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const keys =
        issue.code === 'unrecognized_keys'
          ? issue.keys.map((k) => [...issue.path, k].join('.'))
          : [issue.path.join('.') || '(root)'];
      for (const key of keys) {
        const message = issue.code === 'unrecognized_keys' ? 'unknown setting' : issue.message;
        const source = sources.get(key);
        issues.push(source ? { key, message, source } : { key, message });
      }
    }
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  return deepFreeze(resolvePaths(result.data, cwd));
}

/** Makes every file setting absolute so later `chdir`s or child processes cannot change their meaning. */
function resolvePaths(config: Config, cwd: string): Config {
  const abs = (p: string) => path.resolve(cwd, p);
  const opt = (p: string | undefined) => (p === undefined ? {} : { value: abs(p) });
  const pw = opt(config.redis.passwordFile);
  const mp = opt(config.store.masterPasswordFile);
  const at = opt(config.admin.tokenFile);
  return {
    ...config,
    dataDir: abs(config.dataDir),
    pkiDir: abs(config.pkiDir),
    whitelistFile: abs(config.whitelistFile),
    tls: {
      ...config.tls,
      certFile: abs(config.tls.certFile),
      keyFile: abs(config.tls.keyFile),
      chainFiles: config.tls.chainFiles.map(abs),
      caFiles: config.tls.caFiles.map(abs),
      crlFiles: config.tls.crlFiles.map(abs),
    },
    redis: { ...config.redis, ...('value' in pw ? { passwordFile: pw.value } : {}) },
    store: { ...config.store, ...('value' in mp ? { masterPasswordFile: mp.value } : {}) },
    admin: { ...config.admin, ...('value' in at ? { tokenFile: at.value } : {}) },
  };
}

/** Reads a secret file, trimming one trailing newline; the value never reaches a log. */
export function readSecretFile(file: string): string {
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}
