import type { RuntimeServiceMethods } from '../generated/api.js';
import type { ServiceHandlers } from '../service-types.js';
import { resourcesFrom } from '../convert/resources.js';
import { noNul, requireId } from '../validate.js';
import type { CriDeps } from './deps.js';

/** ExecSync, UpdateContainerResources, ReopenContainerLog: what kubelet does to a running container. */
export function containerExecHandlers(d: CriDeps): ServiceHandlers<RuntimeServiceMethods> {
  return {
    ExecSync: async (req, ctx) => {
      const cmd = req.cmd.map((a, i) => noNul(`cmd[${i}]`, a));
      const r = await d.containers.io.exec(requireId('container_id', req.container_id), cmd, Math.max(0, Number(req.timeout)), ctx.signal);
      return { stdout: r.stdout, stderr: r.stderr, exit_code: r.exitCode };
    },

    UpdateContainerResources: async (req) => {
      await d.containers.io.updateResources(requireId('container_id', req.container_id), resourcesFrom(req.linux));
      return {};
    },

    ReopenContainerLog: async (req) => {
      await d.containers.io.reopenLog(requireId('container_id', req.container_id));
      return {};
    },
  };
}
