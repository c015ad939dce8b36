import { errorMessage } from '../core/errors.js';
import type { Logger } from '../core/logger.js';
import type { ImageService } from '../image/image-service.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import type { Storage } from '../storage/storage.js';
import { PodLifecycle } from './pod-lifecycle.js';

/**
 * Start-up, in the order the domains depend on each other: the layers and
 * root filesystems first, then pods and images, then containers (which
 * name pods and hold images' layers), and only then garbage collection,
 * once every holder of a layer is known. A RestorePod the daemon died in
 * is taken back: its pod goes with whatever it had restored (its caller
 * never had an answer, and a retry needs the pod's name free).
 */
export async function recoverState(d: {
  storage: Storage;
  sandboxes: SandboxManager;
  images: ImageService;
  containers: ContainerManager;
  logger: Logger;
}): Promise<void> {
  await d.storage.load();
  await Promise.all([d.sandboxes.recover(), d.images.load()]);
  await d.containers.recover({
    podMetadata: (sandboxId) => d.sandboxes.list({ id: sandboxId })[0]?.spec,
    imageLayers: (imageId) => d.images.resolve(imageId)?.layers,
  });
  const pods = new PodLifecycle(d.sandboxes, d.containers);
  for (const pod of d.sandboxes.list().filter((p) => p.restoring)) {
    d.logger.info('removing the pod of a RestorePod the daemon was stopped in', { id: pod.id });
    await pods.remove(pod.id).catch((err: unknown) => d.logger.warn('cannot remove the half-restored pod', { id: pod.id, error: errorMessage(err) }));
  }
  await d.images.collectGarbage();
}
