import type { ContainerManager } from '../runtime/container-manager.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import type { StreamBackend } from './server.js';

/** The streaming server's view of the runtime: containers for exec and attach, pods for port-forward. */
export function runtimeStreamBackend(containers: ContainerManager, sandboxes: SandboxManager): StreamBackend {
  return {
    exec: (req, io) => containers.streamExec(req.containerId, req.cmd, req.tty, io),
    attach: (req, io) => containers.streamAttach(req.containerId, req.tty, io),
    connect: (podId, port) => sandboxes.connect(podId, port),
  };
}
