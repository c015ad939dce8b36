import { FailedPreconditionError } from '../core/errors.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import { connectInPod } from '../sandbox/pod-connect.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { isReady } from '../sandbox/sandbox-spec.js';
import type { StreamBackend } from '../streaming/server.js';

/** What the streaming server does behind its streams: exec and attach in containers, port-forward into pods. */
export function streamBackend(containers: ContainerManager, sandboxes: SandboxManager): StreamBackend {
  return {
    exec: (req, io) => containers.io.streamExec(req.containerId, req.cmd, req.tty, io),
    attach: (req, io) => containers.io.streamAttach(req.containerId, req.tty, io),
    connect: (podId, port) => {
      const pod = sandboxes.get(podId);
      if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
      return connectInPod(pod.pins, port);
    },
  };
}
