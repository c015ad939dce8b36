import { checkResources, type ContainerResources } from '../../cgroups/resource-limits.js';
import type { LinuxContainerResources } from '../generated/api.js';

/** LinuxContainerResources in domain terms, checked as the kernel will check them. */
export function resourcesFrom(res: LinuxContainerResources | undefined, field?: string): ContainerResources {
  const r = resourceValues(res);
  checkResources(r, field);
  return r;
}

function resourceValues(res: LinuxContainerResources | undefined): ContainerResources {
  const num = (v: bigint | undefined) => Number(v ?? 0n);
  return {
    cpuPeriod: num(res?.cpu_period),
    cpuQuota: num(res?.cpu_quota),
    cpuShares: num(res?.cpu_shares),
    memoryLimit: num(res?.memory_limit_in_bytes),
    memorySwapLimit: num(res?.memory_swap_limit_in_bytes),
    oomScoreAdj: num(res?.oom_score_adj),
    cpusetCpus: res?.cpuset_cpus ?? '',
    cpusetMems: res?.cpuset_mems ?? '',
    hugepageLimits: (res?.hugepage_limits ?? []).map((h) => ({ pageSize: h.page_size, limit: Number(h.limit) })),
    unified: { ...(res?.unified ?? {}) },
  };
}
