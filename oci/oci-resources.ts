import type { ContainerResources } from '../cgroups/resource-limits.js';

/**
 * CRI resources as the OCI runtime spec's `linux.resources` (cpu, memory,
 * hugepage limits, the cgroup v2 `unified` map). The one mapping: the
 * spec of a new container and `<runtime> update` of a running one both
 * use it, so an update applies exactly what a create would.
 */
export function ociResources(r: ContainerResources): Record<string, unknown> {
  const cpu: Record<string, unknown> = {};
  if (r.cpuShares > 0) cpu.shares = r.cpuShares;
  if (r.cpuQuota !== 0) cpu.quota = r.cpuQuota;
  if (r.cpuPeriod > 0) cpu.period = r.cpuPeriod;
  if (r.cpusetCpus) cpu.cpus = r.cpusetCpus;
  if (r.cpusetMems) cpu.mems = r.cpusetMems;
  const memory: Record<string, unknown> = {};
  if (r.memoryLimit > 0) memory.limit = r.memoryLimit;
  if (r.memorySwapLimit > 0) memory.swap = r.memorySwapLimit;
  return {
    ...(Object.keys(cpu).length > 0 ? { cpu } : {}),
    ...(Object.keys(memory).length > 0 ? { memory } : {}),
    ...(r.hugepageLimits.length > 0 ? { hugepageLimits: r.hugepageLimits.map((h) => ({ pageSize: h.pageSize, limit: h.limit })) } : {}),
    ...(Object.keys(r.unified).length > 0 ? { unified: { ...r.unified } } : {}),
  };
}
