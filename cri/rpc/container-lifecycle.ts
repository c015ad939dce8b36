import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { containerSpecFrom } from '../convert/container-config.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** CreateContainer, StartContainer, StopContainer, RemoveContainer. */
export function containerLifecycleHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  return {
    CreateContainer: async (req) => {
      const rec = await d.creation.create(requireId('pod_sandbox_id', req.pod_sandbox_id), containerSpecFrom(req.config));
      return { container_id: rec.id };
    },

    StartContainer: async (req) => {
      await d.containers.start(requireId('container_id', req.container_id));
      return {};
    },

    // A negative timeout is "at once", as 0.
    StopContainer: async (req) => {
      await d.containers.stop(requireId('container_id', req.container_id), Math.max(0, Number(req.timeout)));
      return {};
    },

    RemoveContainer: async (req) => {
      await d.containers.remove(requireId('container_id', req.container_id));
      return {};
    },
  };
}
