import { join } from 'node:path';
import { checkpointPod } from '../../orchestration/pod-checkpoint.js';
import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** CheckpointContainer and CheckpointPod, through CRIU; RestorePod is not served yet. */
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
  };
}
