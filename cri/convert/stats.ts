import type { Pressure, PsiLine } from '../../cgroups/cgroup-stats.js';
import type { PodSample } from '../../orchestration/stats-source.js';
import type { ContainerStatsSample } from '../../runtime/stats-sampler.js';
import type { ContainerRecord } from '../../runtime/container-record.js';
import type { ContainerStats, PodSandboxStats, PsiStats } from '../generated/api.js';
import type { Init } from '../service-types.js';

/** PSI in CRI's shape; unset where the kernel gives none. */
export function criPsi(p: Pressure | undefined): PsiStats | undefined {
  if (!p) return undefined;
  const line = (l: PsiLine | undefined) => (l ? { Total: l.total, Avg10: l.avg10, Avg60: l.avg60, Avg300: l.avg300 } : undefined);
  return { Full: line(p.full), Some: line(p.some) };
}

export function criStats(rec: ContainerRecord, sample: ContainerStatsSample, layerMountpoint: string): Init<ContainerStats> {
  const cg = sample.cgroup;
  const u = (v: bigint | number | undefined) => (v === undefined ? undefined : { value: BigInt(v) });
  const timestamp = sample.timestamp;
  // As cAdvisor reports it: what the limit leaves beyond the working set; unset without a limit.
  const available = cg?.memoryLimit !== undefined ? (cg.memoryLimit > cg.workingSet ? cg.memoryLimit - cg.workingSet : 0n) : undefined;
  const swapAvailable =
    cg?.swapLimit !== undefined && cg.swapUsage !== undefined ? (cg.swapLimit > cg.swapUsage ? cg.swapLimit - cg.swapUsage : 0n) : undefined;
  return {
    attributes: { id: rec.id, metadata: { name: rec.spec.name, attempt: rec.spec.attempt }, labels: rec.spec.labels, annotations: rec.spec.annotations },
    cpu: { timestamp, usage_core_nano_seconds: u(cg?.cpuUsageNs ?? 0n), usage_nano_cores: u(sample.nanoCores ?? 0n), psi: criPsi(cg?.psi.cpu) },
    memory: {
      timestamp,
      working_set_bytes: u(cg?.workingSet ?? 0n),
      available_bytes: u(available),
      usage_bytes: u(cg?.memoryUsage ?? 0n),
      rss_bytes: u(cg?.rss ?? 0n),
      page_faults: u(cg?.pageFaults ?? 0n),
      major_page_faults: u(cg?.majorPageFaults ?? 0n),
      psi: criPsi(cg?.psi.memory),
    },
    swap: { timestamp, swap_usage_bytes: u(cg?.swapUsage), swap_available_bytes: u(swapAvailable) },
    io: { timestamp, psi: criPsi(cg?.psi.io) },
    writable_layer: {
      timestamp: sample.timestamp,
      fs_id: { mountpoint: layerMountpoint },
      used_bytes: u(sample.writable.bytes),
      inodes_used: u(sample.writable.inodes),
    },
  };
}

const u = (v: bigint) => ({ value: v });

/** A pod's stats: its containers', summed, plus the network of its namespace. */
export function podStats(sample: PodSample, layersDir: string): Init<PodSandboxStats> {
  const { pod, timestamp, containers: samples, ifaces } = sample;
  const sum = (f: (s: (typeof samples)[number]) => bigint | undefined) => samples.reduce((n, s) => n + (f(s) ?? 0n), 0n);
  const iface = (i: (typeof ifaces)[number]) => ({
    name: i.name,
    rx_bytes: u(i.rxBytes),
    rx_errors: u(i.rxErrors),
    tx_bytes: u(i.txBytes),
    tx_errors: u(i.txErrors),
  });
  const eth0 = ifaces.find((i) => i.name === 'eth0') ?? ifaces[0];
  return {
    attributes: {
      id: pod.id,
      metadata: { name: pod.spec.name, uid: pod.spec.uid, namespace: pod.spec.namespace, attempt: pod.spec.attempt },
      labels: pod.spec.labels,
      annotations: pod.spec.annotations,
    },
    linux: {
      cpu: { timestamp, usage_core_nano_seconds: u(sum((s) => s.sample.cgroup?.cpuUsageNs)), usage_nano_cores: u(sum((s) => s.sample.nanoCores)) },
      memory: {
        timestamp,
        working_set_bytes: u(sum((s) => s.sample.cgroup?.workingSet)),
        usage_bytes: u(sum((s) => s.sample.cgroup?.memoryUsage)),
        rss_bytes: u(sum((s) => s.sample.cgroup?.rss)),
        page_faults: u(sum((s) => s.sample.cgroup?.pageFaults)),
        major_page_faults: u(sum((s) => s.sample.cgroup?.majorPageFaults)),
      },
      network: { timestamp, ...(eth0 ? { default_interface: iface(eth0) } : {}), interfaces: ifaces.map(iface) },
      process: { timestamp, process_count: u(sum((s) => s.sample.processes)) },
      containers: samples.map((s) => criStats(s.rec, s.sample, layersDir)),
    },
  };
}
