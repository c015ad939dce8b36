import { containerFilter, podFilter } from '../convert/filters.js';
import { metricDescriptors, podMetrics } from '../convert/metrics.js';
import { criStats, podStats, samplePod } from '../convert/stats.js';
import type { ContainerStatsFilter, PodSandboxStatsFilter, RuntimeServiceMethods } from '../generated/api.js';
import { chunked } from '../stream-chunks.js';
import type { ServiceHandlers } from '../service-types.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** Container and pod stats and metrics, one, listed or streamed: from cgroup files, interface counters and cached disk walks. */
export function statsHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const { containers, sandboxes } = d;
  const listStats = (filter: ContainerStatsFilter | undefined) =>
    Promise.all(containers.list(containerFilter(filter) ?? {}).map(async (rec) => criStats(rec, await containers.stats(rec), containers.layersDir)));
  const listPodStats = (filter: PodSandboxStatsFilter | undefined) => Promise.all(sandboxes.list(podFilter(filter)).map((p) => podStats(p, containers)));
  // Pods that still run; a stopped pod has nothing to measure (as CRI-O).
  const allPodMetrics = () =>
    Promise.all(sandboxes.list({ state: 'ready' }).map(async (p) => podMetrics(await samplePod(p, containers), containers.layersDir)));
  return {
    ContainerStats: async (req) => {
      const rec = containers.get(requireId('container_id', req.container_id));
      return { stats: criStats(rec, await containers.stats(rec), containers.layersDir) };
    },

    ListContainerStats: async (req) => ({ stats: await listStats(req.filter) }),

    StreamContainerStats: async function* (req) {
      for (const chunk of chunked(await listStats(req.filter))) yield { container_stats: chunk };
    },

    PodSandboxStats: async (req) => ({ stats: await podStats(sandboxes.get(requireId('pod_sandbox_id', req.pod_sandbox_id)), containers) }),

    ListPodSandboxStats: async (req) => ({ stats: await listPodStats(req.filter) }),

    ListMetricDescriptors: async () => ({ descriptors: metricDescriptors() }),

    ListPodSandboxMetrics: async () => ({ pod_metrics: await allPodMetrics() }),

    StreamPodSandboxMetrics: async function* () {
      for (const chunk of chunked(await allPodMetrics())) yield { pod_sandbox_metrics: chunk };
    },

    StreamPodSandboxStats: async function* (req) {
      for (const chunk of chunked(await listPodStats(req.filter))) yield { pod_sandbox_stats: chunk };
    },
  };
}
