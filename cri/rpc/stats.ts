import { containerFilter, podFilter } from '../convert/filters.js';
import { metricDescriptors, podMetrics } from '../convert/metrics.js';
import { criStats, podStats } from '../convert/stats.js';
import type { PodSample } from '../../orchestration/stats-source.js';
import type { ContainerStatsSample } from '../../runtime/stats-sampler.js';
import type { ContainerStatsFilter, PodSandboxStatsFilter, RuntimeServiceMethods } from '../generated/api.js';
import { chunked } from '../stream-chunks.js';
import type { ServiceHandlers } from '../service-types.js';
import { requireId } from '../validate.js';
import { stepSync } from '../../core/tracing.js';
import type { CriDeps } from './deps.js';

/** Container and pod stats and metrics, one, listed or streamed: from cgroup files, interface counters and cached disk walks. */
export function statsHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const { containers, sandboxes, stats } = d;
  const listStats = async (filter: ContainerStatsFilter | undefined) => {
    const recs = containers.list(containerFilter(filter) ?? {});
    const samples = await stats.containerSamples(recs);
    return stepSync('stats built', () => recs.map((rec, i) => criStats(rec, samples[i] as ContainerStatsSample, containers.layersDir)));
  };
  const listPodStats = async (filter: PodSandboxStatsFilter | undefined) => {
    const samples = await stats.podSamples(sandboxes.list(podFilter(filter)));
    return stepSync('stats built', () => samples.map((s) => podStats(s, containers.layersDir)));
  };
  // Pods that still run; a stopped pod has nothing to measure (as CRI-O).
  const allPodMetrics = async () => (await stats.podSamples(sandboxes.list({ state: 'ready' }))).map((s) => podMetrics(s, containers.layersDir));
  return {
    ContainerStats: async (req) => {
      const rec = containers.get(requireId('container_id', req.container_id));
      const [sample] = await stats.containerSamples([rec]);
      return { stats: criStats(rec, sample as ContainerStatsSample, containers.layersDir) };
    },

    ListContainerStats: async (req) => ({ stats: await listStats(req.filter) }),

    StreamContainerStats: async function* (req) {
      for (const chunk of chunked(await listStats(req.filter))) yield { container_stats: chunk };
    },

    PodSandboxStats: async (req) => {
      const [sample] = await stats.podSamples([sandboxes.get(requireId('pod_sandbox_id', req.pod_sandbox_id))]);
      return { stats: podStats(sample as PodSample, containers.layersDir) };
    },

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
