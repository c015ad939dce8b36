import type { CradleConfig } from '../core/config/config.js';

export interface ConfigChange {
  key: string;
  before: unknown;
  after: unknown;
}

export interface ReloadPlan {
  /** Changes that take effect now. */
  applied: ConfigChange[];
  /** Changes that need a daemon restart; the running value is kept. */
  needsRestart: ConfigChange[];
  /** The config the daemon runs with after the reload. */
  effective: CradleConfig;
}

/**
 * Keys whose value is wired into something built once at start (the socket,
 * state dirs, the cgroup driver kubelet has read, the CNI watcher, the
 * streaming and metrics listeners). Everything else is read at use and reloads live.
 */
const RESTART_ONLY = ['root', 'runroot', 'listen', 'cgroup_manager', 'cni.conf_dir', 'streaming', 'metrics', 'tracing'];

function flatten(value: unknown, prefix: string, out: Map<string, string>): void {
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const entries = Object.entries(value);
    if (entries.length === 0 && prefix) out.set(prefix, '{}');
    for (const [k, v] of entries) flatten(v, prefix ? `${prefix}.${k}` : k, out);
  } else {
    out.set(prefix, JSON.stringify(value));
  }
}

function restartOnly(key: string): boolean {
  return RESTART_ONLY.some((k) => key === k || key.startsWith(`${k}.`));
}

/** Sets `path` (e.g. cni.conf_dir) in `to` to its value in `from`. */
function copyPath(from: object, to: object, path: string[]): void {
  const [head, ...rest] = path as [string, ...string[]];
  const src = (from as Record<string, unknown>)[head];
  const dst = to as Record<string, unknown>;
  if (rest.length === 0) dst[head] = structuredClone(src);
  else if (typeof src === 'object' && src !== null && typeof dst[head] === 'object' && dst[head] !== null) copyPath(src, dst[head] as object, rest);
}

export function planReload(current: CradleConfig, next: CradleConfig): ReloadPlan {
  const a = new Map<string, string>();
  const b = new Map<string, string>();
  flatten(current, '', a);
  flatten(next, '', b);
  const applied: ConfigChange[] = [];
  const needsRestart: ConfigChange[] = [];
  for (const key of [...new Set([...a.keys(), ...b.keys()])].sort()) {
    const before = a.get(key);
    const after = b.get(key);
    if (before === after) continue;
    const change = {
      key,
      before: before === undefined ? undefined : (JSON.parse(before) as unknown),
      after: after === undefined ? undefined : (JSON.parse(after) as unknown),
    };
    (restartOnly(key) ? needsRestart : applied).push(change);
  }
  const effective = structuredClone(next);
  for (const key of RESTART_ONLY) copyPath(current, effective, key.split('.'));
  return { applied, needsRestart, effective };
}
