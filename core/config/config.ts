import { isAbsolute, join } from 'node:path';
import { LOG_FORMATS, LOG_LEVELS, type LogFormat, type LogLevel } from '../logger.js';
import { validate, type Spec } from './schema.js';
import { parseUlimit } from '../ulimit.js';
import { errorMessage } from '../errors.js';

/** The cgroup drivers (`cgroup_manager`), as kubelet's --cgroup-driver names them. */
export const CGROUP_DRIVERS = ['cgroupfs', 'systemd'] as const;
export type CgroupDriver = (typeof CGROUP_DRIVERS)[number];

export interface RuntimeHandlerConfig {
  /** The OCI runtime binary (runc, crun). */
  path: string;
  /** The runtime's own state directory (`runc --root`). */
  root: string;
  type: 'oci';
}

export interface CradleConfig {
  root: string;
  runroot: string;
  listen: string;
  cgroup_manager: CgroupDriver;
  default_runtime: string;
  shutdown_timeout: string;
  log: { level: LogLevel; format: LogFormat };
  runtimes: Record<string, RuntimeHandlerConfig>;
  conmon: { path: string };
  cni: { conf_dir: string; bin_dirs: string[]; plugin_timeout: string };
  sandbox: { shm_size: string; pod_init: string };
  containers: { log_size_max: string; default_ulimits: string[]; apparmor_default_profile: string; events_buffer: number };
  image: { insecure_registries: string[]; credentials_file: string; mirrors: Record<string, string[]> };
  streaming: { address: string; port: number; idle_timeout: string; token_ttl: string };
  /** Container and pod stats: read on each call while `collection_period` is 0, else from the last collection. */
  stats: { collection_period: string };
  /** The Prometheus endpoint: off while `address` is empty. */
  metrics: { address: string; port: number };
  /** OTLP/HTTP export of traces: off while `endpoint` is empty. */
  tracing: { endpoint: string; sampling_rate_per_million: number };
}

const absolutePath: Spec = { type: 'string', absolutePath: true };

export const CONFIG_SPEC: Spec = {
  type: 'table',
  fields: {
    root: absolutePath,
    runroot: absolutePath,
    listen: absolutePath,
    cgroup_manager: { type: 'enum', values: CGROUP_DRIVERS },
    default_runtime: { type: 'string' },
    shutdown_timeout: { type: 'duration' },
    log: {
      type: 'table',
      fields: {
        level: { type: 'enum', values: LOG_LEVELS },
        format: { type: 'enum', values: LOG_FORMATS },
      },
    },
    runtimes: {
      type: 'record',
      value: {
        type: 'table',
        fields: {
          path: absolutePath,
          root: absolutePath,
          type: { type: 'enum', values: ['oci'] },
        },
      },
    },
    conmon: { type: 'table', fields: { path: absolutePath } },
    cni: {
      type: 'table',
      fields: {
        conf_dir: absolutePath,
        bin_dirs: { type: 'stringArray' },
        plugin_timeout: { type: 'duration' },
      },
    },
    sandbox: {
      type: 'table',
      fields: {
        shm_size: { type: 'quantity' },
        pod_init: absolutePath,
      },
    },
    image: {
      type: 'table',
      fields: {
        insecure_registries: { type: 'stringArray' },
        credentials_file: { type: 'string', absolutePath: true, allowEmpty: true },
        mirrors: { type: 'record', value: { type: 'stringArray' } },
      },
    },
    containers: {
      type: 'table',
      fields: {
        log_size_max: { type: 'quantity' },
        default_ulimits: { type: 'stringArray' },
        apparmor_default_profile: { type: 'string', allowEmpty: true },
        events_buffer: { type: 'int', min: 1, max: 1_000_000 },
      },
    },
    streaming: {
      type: 'table',
      fields: {
        address: { type: 'string' },
        port: { type: 'int', min: 0, max: 65535 },
        idle_timeout: { type: 'duration' },
        token_ttl: { type: 'duration' },
      },
    },
    stats: { type: 'table', fields: { collection_period: { type: 'duration' } } },
    metrics: {
      type: 'table',
      fields: {
        address: { type: 'string', allowEmpty: true },
        port: { type: 'int', min: 0, max: 65535 },
      },
    },
    tracing: {
      type: 'table',
      fields: {
        endpoint: { type: 'string', allowEmpty: true, httpUrl: true },
        sampling_rate_per_million: { type: 'int', min: 0, max: 1_000_000 },
      },
    },
  },
};

/** One config layer and where it came from, for error messages. */
export interface ConfigLayer {
  source: string;
  data: Record<string, unknown>;
}

export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: string[]) {
    super(problems.length === 1 ? `invalid configuration: ${problems[0]}` : `invalid configuration:\n  ${problems.join('\n  ')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

function isPlainTable(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Tables merge key by key; anything else (scalars, arrays) is replaced whole. */
export function mergeTables(base: Record<string, unknown>, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...base };
  for (const [k, v] of Object.entries(over)) {
    const prev = out[k];
    out[k] = isPlainTable(prev) && isPlainTable(v) ? mergeTables(prev, v) : v;
  }
  return out;
}

function normalizeNumbers(value: unknown): unknown {
  if (typeof value === 'bigint') return Number(value);
  if (Array.isArray(value)) return value.map(normalizeNumbers);
  if (isPlainTable(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalizeNumbers(v)]));
  return value;
}

/**
 * Validates each layer on its own (so an error names the file it is in),
 * merges them in order, fills derived defaults and checks the result as a
 * whole. Throws ConfigError listing every problem found.
 */
export function resolveConfig(layers: readonly ConfigLayer[]): CradleConfig {
  const problems: string[] = [];
  let merged: Record<string, unknown> = {};
  for (const layer of layers) {
    for (const p of validate(layer.data, CONFIG_SPEC, '')) problems.push(`${layer.source}: ${p}`);
    merged = mergeTables(merged, layer.data);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const config = normalizeNumbers(merged) as CradleConfig;
  problems.push(...completeRuntimes(config));
  problems.push(...checkWhole(config));
  if (problems.length > 0) throw new ConfigError(problems);
  return config;
}

function completeRuntimes(config: CradleConfig): string[] {
  const problems: string[] = [];
  const runtimes: Record<string, RuntimeHandlerConfig> = {};
  for (const [name, partial] of Object.entries(config.runtimes ?? {})) {
    const handler = partial as Partial<RuntimeHandlerConfig>;
    if (handler.path === undefined) {
      problems.push(`effective config: runtimes.${name}.path: expected an absolute path string, found nothing`);
      continue;
    }
    runtimes[name] = {
      path: handler.path,
      root: handler.root ?? join(config.runroot, name),
      type: handler.type ?? 'oci',
    };
  }
  config.runtimes = runtimes;
  return problems;
}

function checkWhole(config: CradleConfig): string[] {
  const problems: string[] = [];
  const names = Object.keys(config.runtimes);
  if (names.length === 0) problems.push('effective config: runtimes: expected at least one [runtimes.NAME] table, found none');
  else if (!(config.default_runtime in config.runtimes)) {
    problems.push(
      `effective config: default_runtime: expected one of the configured runtimes (${names.join(', ')}), found ${JSON.stringify(config.default_runtime)}`,
    );
  }
  if (config.root === config.runroot)
    problems.push(`effective config: runroot: expected a directory other than root, found ${JSON.stringify(config.runroot)} for both`);
  for (const u of config.containers.default_ulimits) {
    try {
      parseUlimit(u);
    } catch (err) {
      problems.push(`effective config: containers.default_ulimits: ${errorMessage(err)}`);
    }
  }
  for (const key of ['root', 'runroot', 'listen'] as const) {
    if (!isAbsolute(config[key])) problems.push(`effective config: ${key}: expected an absolute path, found ${JSON.stringify(config[key])}`);
  }
  return problems;
}
