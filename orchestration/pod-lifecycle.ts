import type { ContainerManager } from '../runtime/container-manager.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';

/**
 * Stopping or removing a pod takes its containers first: the one place
 * where the pod and container domains meet for it. Unknown ids succeed,
 * as kubelet retries both.
 */
export class PodLifecycle {
  constructor(
    private readonly sandboxes: SandboxManager,
    private readonly containers: ContainerManager,
  ) {}

  async stop(idOrPrefix: string): Promise<void> {
    const id = this.sandboxes.find(idOrPrefix);
    if (id === undefined) return;
    await this.containers.stopAll(id);
    await this.sandboxes.stop(id);
  }

  async remove(idOrPrefix: string): Promise<void> {
    const id = this.sandboxes.find(idOrPrefix);
    if (id === undefined) return;
    await this.containers.removeAll(id);
    await this.sandboxes.remove(id);
  }
}
