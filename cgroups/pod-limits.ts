import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage, FailedPreconditionError } from '../core/errors.js';
import { CGROUP_ROOT, CGROUP_V2 } from './cgroup-stats.js';
import type { ContainerResources } from './resource-limits.js';

/** A pod's own cgroup limits (UpdatePodSandboxResources); 0 leaves a limit as it is. */
export interface PodLimits {
  cpuShares: number;
  cpuQuota: number;
  cpuPeriod: number;
  memoryLimit: number;
}

const DEFAULT_CFS_PERIOD = 100_000;

/** The pod's resources with the runtime class's overhead added, as kubelet sizes the pod cgroup. */
export function podLimits(resources: ContainerResources, overhead: ContainerResources): PodLimits {
  const period = resources.cpuPeriod || overhead.cpuPeriod;
  // Quotas add up only over one period: the overhead's is scaled to the pod's.
  const overheadQuota =
    overhead.cpuQuota > 0 ? Math.round((overhead.cpuQuota * (period || DEFAULT_CFS_PERIOD)) / (overhead.cpuPeriod || DEFAULT_CFS_PERIOD)) : 0;
  return {
    cpuShares: resources.cpuShares + overhead.cpuShares,
    cpuQuota: resources.cpuQuota > 0 ? resources.cpuQuota + overheadQuota : resources.cpuQuota,
    cpuPeriod: period,
    memoryLimit: resources.memoryLimit > 0 ? resources.memoryLimit + overhead.memoryLimit : 0,
  };
}

/** cgroup v2's cpu.weight for v1's cpu.shares, the mapping runc and crun use. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262_142);
}

/** The files (below the hierarchy root) and values that set `limits` on the cgroup `dir`. */
export function podLimitFiles(dir: string, l: PodLimits, v2 = CGROUP_V2): Array<[string, string]> {
  const files: Array<[string, string]> = [];
  const cpuSet = l.cpuQuota !== 0 || l.cpuPeriod !== 0;
  if (v2) {
    if (l.cpuShares > 0) files.push([join(dir, 'cpu.weight'), String(sharesToWeight(l.cpuShares))]);
    if (cpuSet) files.push([join(dir, 'cpu.max'), `${l.cpuQuota > 0 ? l.cpuQuota : 'max'} ${l.cpuPeriod || DEFAULT_CFS_PERIOD}`]);
    if (l.memoryLimit > 0) files.push([join(dir, 'memory.max'), String(l.memoryLimit)]);
    return files;
  }
  if (l.cpuShares > 0) files.push([join('cpu', dir, 'cpu.shares'), String(l.cpuShares)]);
  if (l.cpuPeriod > 0) files.push([join('cpu', dir, 'cpu.cfs_period_us'), String(l.cpuPeriod)]);
  if (cpuSet) files.push([join('cpu', dir, 'cpu.cfs_quota_us'), String(l.cpuQuota > 0 ? l.cpuQuota : -1)]);
  if (l.memoryLimit > 0) files.push([join('memory', dir, 'memory.limit_in_bytes'), String(l.memoryLimit)]);
  return files;
}

/**
 * Writes a pod's limits on its own cgroup, which kubelet made (under
 * systemd, the pod's slice, whose unit properties kubelet sets itself).
 */
export async function applyPodLimits(dir: string, limits: PodLimits): Promise<void> {
  const probe = CGROUP_V2 ? join(CGROUP_ROOT, dir) : join(CGROUP_ROOT, 'memory', dir);
  if (!existsSync(probe)) throw new FailedPreconditionError(`the pod's cgroup ${dir} does not exist`);
  for (const [file, value] of podLimitFiles(dir, limits)) {
    await writeFile(join(CGROUP_ROOT, file), value).catch((err: unknown) => {
      throw new FailedPreconditionError(`cannot set the pod's ${file} to ${value}: ${errorMessage(err)}`);
    });
  }
}
