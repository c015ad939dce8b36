import { FailedPreconditionError, NotFoundError } from '../core/errors.js';
import type { ImageService } from '../image/image-service.js';
import { parseReference } from '../image/reference.js';
import type { ContainerSpec } from '../oci/container-spec.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import { containerName, type ContainerRecord } from '../runtime/container-record.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { isReady } from '../sandbox/sandbox-spec.js';

/**
 * CreateContainer across domains: a container is made from its pod (which
 * must be READY) and its image (which must be pulled). Both are looked up
 * and handed to the runtime in one turn of the event loop, so the image
 * cannot be removed between its look-up and the container's hold on it.
 */
export class ContainerCreation {
  constructor(
    private readonly sandboxes: SandboxManager,
    private readonly images: ImageService,
    private readonly containers: ContainerManager,
  ) {}

  create(sandboxId: string, spec: ContainerSpec): Promise<ContainerRecord> {
    const pod = this.sandboxes.get(sandboxId);
    if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
    const image = this.images.resolve(spec.image);
    if (!image) {
      // An unreadable reference is the caller's mistake, not a missing image.
      parseReference(spec.image);
      throw new NotFoundError(`image "${spec.image}" not found; pull it first`);
    }
    return this.containers.create({
      name: containerName(spec, pod.spec),
      spec,
      pod: {
        id: pod.id,
        name: pod.spec.name,
        namespace: pod.spec.namespace,
        uid: pod.spec.uid,
        hostname: pod.spec.hostname,
        namespaces: pod.pins,
        userns: pod.spec.userns,
        files: {
          hostname: this.sandboxes.podFile(pod.id, 'hostname'),
          hosts: this.sandboxes.podFile(pod.id, 'hosts'),
          resolvConf: this.sandboxes.podFile(pod.id, 'resolv.conf'),
          shm: pod.shmMounted ? this.sandboxes.shmPath(pod.id) : undefined,
        },
        runtimeHandler: pod.spec.runtimeHandler,
        cgroupParent: pod.spec.cgroupParent,
        logDirectory: pod.spec.logDirectory,
      },
      image: { id: image.id, layers: image.layers, config: image.config },
    });
  }
}
