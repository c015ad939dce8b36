import { readFileSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import { CGROUP_V2 } from './cgroup-stats.js';

/** A container's cgroup limits, as CRI's LinuxContainerResources gives them. */
export interface ContainerResources {
  cpuPeriod: number;
  cpuQuota: number;
  cpuShares: number;
  memoryLimit: number;
  memorySwapLimit: number;
  oomScoreAdj: number;
  cpusetCpus: string;
  cpusetMems: string;
  hugepageLimits: Array<{ pageSize: string; limit: number }>;
  /** cgroup v2 files and values, passed to the runtime as they are. */
  unified: Record<string, string>;
}

/** Below this the runtime's own init does not fit in the cgroup (CRI-O refuses the same). */
export const MIN_MEMORY_LIMIT = 12 * 1024 * 1024;

/** The kernel's CFS bounds, in microseconds. */
const MIN_CFS_QUOTA = 1000;
const MIN_CFS_PERIOD = 1000;
const MAX_CFS_PERIOD = 1_000_000;
const MAX_CPU_SHARES = 262_144;

/** CPUs or memory nodes this kernel can have, e.g. "0-1" → 2; undefined when it does not say. */
function possible(path: string): number | undefined {
  try {
    return (
      Math.max(
        ...readFileSync(path, 'utf8')
          .trim()
          .split(',')
          .map((r) => Number(r.split('-').pop())),
      ) + 1
    );
  } catch {
    return undefined;
  }
}

const POSSIBLE_CPUS = possible('/sys/devices/system/cpu/possible');
const POSSIBLE_NODES = possible('/sys/devices/system/node/possible') ?? 1;

/** A cpuset list ("0-3,6"), every number below `limit`. */
function checkCpuset(field: string, list: string, limit: number | undefined): void {
  if (list === '') return;
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) throw new InvalidArgumentError(`${field} ${JSON.stringify(list.slice(0, 64))} is not a list like "0-3,6"`);
  for (const range of list.split(',')) {
    const [from, to = from] = range.split('-').map(Number) as [number, number?];
    if ((to as number) < from) throw new InvalidArgumentError(`${field}: the range ${range} runs backwards`);
    if (limit !== undefined && (to as number) >= limit) throw new InvalidArgumentError(`${field}: ${to} is beyond what this node has (0-${limit - 1})`);
  }
}

/**
 * A container's resources as the kernel and the runtime will accept them,
 * checked before anything is created: a value the kernel refuses later
 * would surface as the runtime's INTERNAL failure, not the caller's mistake.
 */
export function checkResources(r: ContainerResources, field = 'resources'): void {
  const f = (name: string) => `${field}.${name}`;
  if (r.cpuPeriod !== 0 && (r.cpuPeriod < MIN_CFS_PERIOD || r.cpuPeriod > MAX_CFS_PERIOD))
    throw new InvalidArgumentError(`${f('cpu_period')} ${r.cpuPeriod} must be 0 or within ${MIN_CFS_PERIOD}-${MAX_CFS_PERIOD} microseconds`);
  if (r.cpuQuota !== 0 && r.cpuQuota !== -1 && r.cpuQuota < MIN_CFS_QUOTA)
    throw new InvalidArgumentError(`${f('cpu_quota')} ${r.cpuQuota} must be -1, 0 or at least ${MIN_CFS_QUOTA} microseconds`);
  if (r.cpuShares !== 0 && (r.cpuShares < 2 || r.cpuShares > MAX_CPU_SHARES))
    throw new InvalidArgumentError(`${f('cpu_shares')} ${r.cpuShares} must be 0 or within 2-${MAX_CPU_SHARES}`);
  if (r.memoryLimit < 0 || (r.memoryLimit > 0 && r.memoryLimit < MIN_MEMORY_LIMIT))
    throw new InvalidArgumentError(`${f('memory_limit_in_bytes')} ${r.memoryLimit} must be 0 (none) or at least ${MIN_MEMORY_LIMIT} bytes`);
  if (r.memorySwapLimit < -1 || (r.memorySwapLimit > 0 && r.memoryLimit > 0 && r.memorySwapLimit < r.memoryLimit)) {
    throw new InvalidArgumentError(`${f('memory_swap_limit_in_bytes')} ${r.memorySwapLimit} must be -1, 0 or at least the memory limit`);
  }
  if (!Number.isSafeInteger(r.memoryLimit) || !Number.isSafeInteger(r.memorySwapLimit) || !Number.isSafeInteger(r.cpuQuota))
    throw new InvalidArgumentError(`${field}: a limit is beyond what this node can hold`);
  if (r.oomScoreAdj < -1000 || r.oomScoreAdj > 1000) throw new InvalidArgumentError(`${f('oom_score_adj')} ${r.oomScoreAdj} must be within -1000-1000`);
  checkCpuset(f('cpuset_cpus'), r.cpusetCpus, POSSIBLE_CPUS);
  checkCpuset(f('cpuset_mems'), r.cpusetMems, POSSIBLE_NODES);
  for (const [i, h] of r.hugepageLimits.entries()) {
    if (!/^\d+(KB|MB|GB)$/.test(h.pageSize))
      throw new InvalidArgumentError(`${f(`hugepage_limits[${i}].page_size`)} ${JSON.stringify(h.pageSize)} is not a size like "2MB"`);
    if (h.limit < 0 || !Number.isSafeInteger(h.limit)) throw new InvalidArgumentError(`${f(`hugepage_limits[${i}].limit`)} ${h.limit} is out of range`);
  }
  const unified = Object.entries(r.unified);
  if (unified.length > 0 && !CGROUP_V2) throw new InvalidArgumentError(`${f('unified')} needs a cgroup v2 host; this node runs cgroup v1`);
  for (const [key, value] of unified) {
    // Controller files only: cgroup.* would move processes or change the tree itself.
    if (!/^[a-z]+\.[a-z0-9_.]+$/.test(key) || key.startsWith('cgroup.'))
      throw new InvalidArgumentError(`${f('unified')} key ${JSON.stringify(key.slice(0, 64))} is not a controller file such as "memory.high"`);
    if (/[\p{Cc}]/u.test(value) || value.length > 4096) throw new InvalidArgumentError(`${f('unified')}[${key}] holds control characters or is too long`);
  }
}
