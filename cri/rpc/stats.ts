import { containerFilter, podFilter } from '../convert/filters.js';
import { criStats, podStats } from '../convert/stats.js';
import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** ContainerStats, ListContainerStats, PodSandboxStats, ListPodSandboxStats: from cgroup files and cached disk walks. */
export function statsHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  const { containers, sandboxes } = d;
  return {
    ContainerStats: async (req) => {
      const rec = containers.get(requireId('container_id', req.container_id));
      return { stats: criStats(rec, await containers.stats(rec), containers.layersDir) };
    },

    ListContainerStats: async (req) => {
      const recs = containers.list(containerFilter(req.filter) ?? {});
      return { stats: await Promise.all(recs.map(async (rec) => criStats(rec, await containers.stats(rec), containers.layersDir))) };
    },

    PodSandboxStats: async (req) => ({ stats: await podStats(sandboxes.get(requireId('pod_sandbox_id', req.pod_sandbox_id)), containers) }),

    ListPodSandboxStats: async (req) => ({ stats: await Promise.all(sandboxes.list(podFilter(req.filter)).map((p) => podStats(p, containers))) }),
  };
}
