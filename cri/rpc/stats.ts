import { containerFilter, podFilter } from '../convert/filters.js';
import { criStats, podStats } from '../convert/stats.js';
import type { ContainerStatsFilter, PodSandboxStatsFilter, RuntimeServiceMethods } from '../generated/api.js';
import { chunked } from '../stream-chunks.js';
import type { ServiceHandlers } from '../service-types.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** Container and pod stats, one, listed or streamed: from cgroup files and cached disk walks. */
export function statsHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const { containers, sandboxes } = d;
  const listStats = (filter: ContainerStatsFilter | undefined) =>
    Promise.all(containers.list(containerFilter(filter) ?? {}).map(async (rec) => criStats(rec, await containers.stats(rec), containers.layersDir)));
  const listPodStats = (filter: PodSandboxStatsFilter | undefined) => Promise.all(sandboxes.list(podFilter(filter)).map((p) => podStats(p, containers)));
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

    StreamPodSandboxStats: async function* (req) {
      for (const chunk of chunked(await listPodStats(req.filter))) yield { pod_sandbox_stats: chunk };
    },
  };
}
