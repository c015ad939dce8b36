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
 * streaming listener). Everything else is read at use and reloads live.
 */
const RESTART_ONLY = ['root', 'runroot', 'listen', 'cgroup_manager', 'cni', 'streaming'];

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
  const effective: CradleConfig = { ...next };
  for (const key of RESTART_ONLY) (effective as unknown as Record<string, unknown>)[key] = (current as unknown as Record<string, unknown>)[key];
  return { applied, needsRestart, effective };
}
