import type { CgroupStats } from '../../cgroups/cgroup-stats.js';
import type { InterfaceCounters } from '../../network/interface-stats.js';
import { type Metric, type MetricDescriptor, MetricType, type PodSandboxMetrics } from '../generated/api.js';
import type { Init } from '../service-types.js';
import type { PodSample } from '../../orchestration/stats-source.js';

/**
 * The cAdvisor metrics kubelet serves on /metrics/cadvisor when it takes
 * them from the runtime (PodAndContainerStatsFromCRI), with cAdvisor's
 * names and labels: `container`, `id` (the container's id), `image`,
 * `name` (the runtime's name for it), `namespace`, `pod`; pod-wide
 * network metrics are the pod's, with `container` "POD" as cAdvisor has
 * them. CRI values are unsigned integers, so seconds are whole seconds.
 */
const BASE_KEYS = ['container', 'id', 'image', 'name', 'namespace', 'pod'];

type ContainerReading = PodSample['containers'][number] & {
  /** The writable layers' filesystem, cAdvisor's `device`. */
  device: string;
};

interface Definition<T> {
  name: string;
  help: string;
  type: MetricType;
  /** Label keys after the base ones, with their values in each value. */
  extra?: string[];
  values(r: T): Array<{ value: bigint; extra?: string[] }>;
}

const NS_PER_S = 1_000_000_000n;
const one = (value: bigint | undefined) => (value === undefined ? [] : [{ value }]);
const fromCgroup = (f: (cg: CgroupStats) => bigint | undefined) => (r: ContainerReading) => one(r.sample.cgroup ? f(r.sample.cgroup) : undefined);

const CONTAINER_METRICS: Definition<ContainerReading>[] = [
  {
    name: 'container_cpu_usage_seconds_total',
    help: 'Cumulative cpu time consumed in seconds.',
    type: MetricType.COUNTER,
    extra: ['cpu'],
    values: (r) => (r.sample.cgroup ? [{ value: r.sample.cgroup.cpuUsageNs / NS_PER_S, extra: ['total'] }] : []),
  },
  {
    name: 'container_memory_usage_bytes',
    help: 'Current memory usage in bytes, including all memory regardless of when it was accessed.',
    type: MetricType.GAUGE,
    values: fromCgroup((cg) => cg.memoryUsage),
  },
  {
    name: 'container_memory_working_set_bytes',
    help: 'Current working set in bytes.',
    type: MetricType.GAUGE,
    values: fromCgroup((cg) => cg.workingSet),
  },
  { name: 'container_memory_rss', help: 'Size of RSS in bytes.', type: MetricType.GAUGE, values: fromCgroup((cg) => cg.rss) },
  { name: 'container_memory_swap', help: 'Container swap usage in bytes.', type: MetricType.GAUGE, values: fromCgroup((cg) => cg.swapUsage) },
  {
    name: 'container_spec_memory_limit_bytes',
    help: 'Memory limit for the container.',
    type: MetricType.GAUGE,
    values: fromCgroup((cg) => cg.memoryLimit ?? 0n),
  },
  {
    name: 'container_oom_events_total',
    help: 'Count of out of memory events observed for the container.',
    type: MetricType.COUNTER,
    values: fromCgroup((cg) => cg.oomKills),
  },
  { name: 'container_processes', help: 'Number of processes running inside the container.', type: MetricType.GAUGE, values: (r) => one(r.sample.processes) },
  {
    name: 'container_fs_usage_bytes',
    help: 'Number of bytes that are consumed by the container on this filesystem.',
    type: MetricType.GAUGE,
    extra: ['device'],
    values: (r) => [{ value: BigInt(r.sample.writable.bytes), extra: [r.device] }],
  },
  {
    name: 'container_fs_inodes_total',
    help: 'Number of inodes used by the container on this filesystem.',
    type: MetricType.GAUGE,
    extra: ['device'],
    values: (r) => [{ value: BigInt(r.sample.writable.inodes), extra: [r.device] }],
  },
  {
    name: 'container_start_time_seconds',
    help: 'Start time of the container since unix epoch in seconds.',
    type: MetricType.GAUGE,
    values: (r) => one(r.rec.startedAt === undefined ? undefined : r.rec.startedAt / NS_PER_S),
  },
];

const network = (name: string, help: string, f: (i: InterfaceCounters) => bigint): Definition<InterfaceCounters> => ({
  name,
  help,
  type: MetricType.COUNTER,
  extra: ['interface'],
  values: (i) => [{ value: f(i), extra: [i.name] }],
});

const POD_METRICS: Definition<InterfaceCounters>[] = [
  network('container_network_receive_bytes_total', 'Cumulative count of bytes received.', (i) => i.rxBytes),
  network('container_network_receive_packets_total', 'Cumulative count of packets received.', (i) => i.rxPackets),
  network('container_network_receive_errors_total', 'Cumulative count of errors encountered while receiving.', (i) => i.rxErrors),
  network('container_network_receive_packets_dropped_total', 'Cumulative count of packets dropped while receiving.', (i) => i.rxDropped),
  network('container_network_transmit_bytes_total', 'Cumulative count of bytes transmitted.', (i) => i.txBytes),
  network('container_network_transmit_packets_total', 'Cumulative count of packets transmitted.', (i) => i.txPackets),
  network('container_network_transmit_errors_total', 'Cumulative count of errors encountered while transmitting.', (i) => i.txErrors),
  network('container_network_transmit_packets_dropped_total', 'Cumulative count of packets dropped while transmitting.', (i) => i.txDropped),
];

/** ListMetricDescriptors: every metric Cradle reports, with its label keys in the order of its label values. */
export function metricDescriptors(): Init<MetricDescriptor>[] {
  return [...CONTAINER_METRICS, ...POD_METRICS].map((d) => ({ name: d.name, help: d.help, label_keys: [...BASE_KEYS, ...(d.extra ?? [])] }));
}

function metricsOf<T>(defs: Definition<T>[], subject: T, base: string[], timestamp: bigint): Init<Metric>[] {
  return defs.flatMap((d) =>
    d.values(subject).map((v) => ({ name: d.name, timestamp, metric_type: d.type, label_values: [...base, ...(v.extra ?? [])], value: { value: v.value } })),
  );
}

/** One pod's metrics: the network of its namespace, and each container's. */
export function podMetrics(s: PodSample, layersDir: string): Init<PodSandboxMetrics> {
  const { pod } = s;
  const podBase = ['POD', pod.id, '', pod.id, pod.spec.namespace, pod.spec.name];
  return {
    pod_sandbox_id: pod.id,
    metrics: s.ifaces.flatMap((i) => metricsOf(POD_METRICS, i, podBase, s.timestamp)),
    container_metrics: s.containers.map((r) => ({
      container_id: r.rec.id,
      metrics: metricsOf(
        CONTAINER_METRICS,
        { ...r, device: layersDir },
        [r.rec.spec.name, r.rec.id, r.rec.spec.image, r.rec.name ?? r.rec.id, pod.spec.namespace, pod.spec.name],
        r.sample.timestamp,
      ),
    })),
  };
}
