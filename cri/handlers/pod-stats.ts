import { nowNs } from '../../core/clock.js';
import { InvalidArgumentError } from '../../core/errors.js';
import { interfaceCounters } from '../../network/interface-stats.js';
import { containerState } from '../../runtime/container-record.js';
import type { ContainerManager } from '../../runtime/container-manager.js';
import type { SandboxManager } from '../../sandbox/sandbox-manager.js';
import type { SandboxRecord } from '../../sandbox/sandbox-spec.js';
import type { PodSandboxStats, RuntimeServiceMethods } from '../generated/api.js';
import type { Init, ServiceHandlers } from '../service-types.js';
import { criStats } from './containers.js';

const u = (v: bigint) => ({ value: v });

/** A pod's stats: its containers', summed, plus the network of its namespace. */
async function podStats(pod: SandboxRecord, containers: ContainerManager): Promise<Init<PodSandboxStats>> {
  const timestamp = nowNs();
  const recs = containers.list({ sandboxId: pod.id });
  const samples = await Promise.all(recs.map(async (rec) => ({ rec, sample: await containers.stats(rec), procs: await containers.processCount(rec) })));
  const sum = (f: (s: (typeof samples)[number]) => bigint | undefined) => samples.reduce((n, s) => n + (f(s) ?? 0n), 0n);
  // Any process in the pod's network namespace tells its interfaces: the pod init, or a running container.
  const inNetns = pod.initPid ?? recs.find((r) => containerState(r) === 'running' && r.pid !== undefined)?.pid;
  const ifaces = pod.pins.net && inNetns !== undefined ? ((await interfaceCounters(inNetns)) ?? []) : [];
  const iface = (i: (typeof ifaces)[number]) => ({ name: i.name, rx_bytes: u(i.rxBytes), rx_errors: u(i.rxErrors), tx_bytes: u(i.txBytes), tx_errors: u(i.txErrors) });
  const eth0 = ifaces.find((i) => i.name === 'eth0') ?? ifaces[0];
  return {
    attributes: { id: pod.id, metadata: { name: pod.spec.name, uid: pod.spec.uid, namespace: pod.spec.namespace, attempt: pod.spec.attempt }, labels: pod.spec.labels, annotations: pod.spec.annotations },
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
      process: { timestamp, process_count: u(sum((s) => s.procs)) },
      containers: samples.map((s) => criStats(s.rec, s.sample, containers.layersDir)),
    },
  };
}

export function podStatsHandlers(sandboxes: SandboxManager, containers: ContainerManager): ServiceHandlers<RuntimeServiceMethods> {
  return {
    PodSandboxStats: async (req) => {
      if (req.pod_sandbox_id === '') throw new InvalidArgumentError('pod_sandbox_id is empty');
      return { stats: await podStats(sandboxes.get(req.pod_sandbox_id), containers) };
    },
    ListPodSandboxStats: async (req) => {
      const f = req.filter;
      const pods = sandboxes.list({ id: f?.id || undefined, labels: f && Object.keys(f.label_selector).length > 0 ? f.label_selector : undefined });
      return { stats: await Promise.all(pods.map((p) => podStats(p, containers))) };
    },
  };
}
