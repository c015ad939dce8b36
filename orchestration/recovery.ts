import type { ImageService } from '../image/image-service.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import type { Storage } from '../storage/storage.js';

/**
 * Start-up, in the order the domains depend on each other: the layers and
 * root filesystems first, then pods and images, then containers (which
 * name pods and hold images' layers), and only then garbage collection,
 * once every holder of a layer is known.
 */
export async function recoverState(d: { storage: Storage; sandboxes: SandboxManager; images: ImageService; containers: ContainerManager }): Promise<void> {
  await d.storage.load();
  await Promise.all([d.sandboxes.recover(), d.images.load()]);
  await d.containers.recover({
    podMetadata: (sandboxId) => d.sandboxes.list({ id: sandboxId })[0]?.spec,
    imageLayers: (imageId) => d.images.resolve(imageId)?.layers,
  });
  await d.images.collectGarbage();
}
