import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { podLimits } from '../../cgroups/pod-limits.js';
import { sandboxSpecFrom } from '../convert/pod-config.js';
import { resourcesFrom } from '../convert/resources.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** RunPodSandbox, StopPodSandbox, RemovePodSandbox, UpdatePodSandboxResources. */
export function podLifecycleHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  return {
    RunPodSandbox: async (req, ctx) => {
      const rec = await d.sandboxes.run(sandboxSpecFrom(req.config, req.runtime_handler), ctx.signal);
      return { pod_sandbox_id: rec.id };
    },

    StopPodSandbox: async (req) => {
      await d.pods.stop(requireId('pod_sandbox_id', req.pod_sandbox_id));
      return {};
    },

    RemovePodSandbox: async (req) => {
      await d.pods.remove(requireId('pod_sandbox_id', req.pod_sandbox_id));
      return {};
    },

    UpdatePodSandboxResources: async (req) => {
      const id = requireId('pod_sandbox_id', req.pod_sandbox_id);
      await d.sandboxes.updateResources(id, podLimits(resourcesFrom(req.resources, 'resources'), resourcesFrom(req.overhead, 'overhead')));
      return {};
    },
  };
}
