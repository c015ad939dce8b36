import { join } from 'node:path';
import { checkpointPod } from '../../orchestration/pod-checkpoint.js';
import { restorePod } from '../../orchestration/pod-restore.js';
import { containerSpecFrom } from '../convert/container-config.js';
import { sandboxSpecFrom } from '../convert/pod-config.js';
import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** CheckpointContainer, CheckpointPod and RestorePod, through CRIU (restoring a single container is CreateContainer's, from an archive). */
export function checkpointHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  return {
    CheckpointContainer: async (req) => {
      await d.containers.io.checkpoint(requireId('container_id', req.container_id), req.location, Number(req.timeout));
      return {};
    },

    CheckpointPod: async (req) => {
      const podId = requireId('pod_sandbox_id', req.pod_sandbox_id);
      await checkpointPod(d.sandboxes, d.containers, { podId, outputPath: req.output_path, containerIds: req.container_ids }, join(d.runroot, 'checkpoints'));
      return {};
    },

    RestorePod: async (req, ctx) => {
      const handler = req.runtime_handler;
      const { podId, restored } = await restorePod(
        d,
        {
          archive: req.checkpoint_path,
          spec: req.config ? sandboxSpecFrom(req.config, handler) : undefined,
          runtimeHandler: handler,
          containers: req.container_configs.map((c) => containerSpecFrom(c)),
        },
        ctx.signal,
      );
      return { pod_sandbox_id: podId, restored_containers: restored.map((r) => ({ name: r.name, container_id: r.id })) };
    },
  };
}
