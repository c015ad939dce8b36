import { InvalidArgumentError } from '../core/errors.js';
import type { ContainerSpec } from '../oci/container-spec.js';

/** CreateContainer names a checkpoint archive, not an image, when its image is an absolute path (no image reference starts with "/"). */
export function isCheckpointArchive(image: string): boolean {
  return image.startsWith('/');
}

/**
 * The spec of a container restored from a checkpoint: the checkpointed
 * container's own (its processes come back as they were, so its command,
 * environment and security cannot change), under the name, labels,
 * annotations and log path the request gives. The request's mounts replace
 * the checkpoint's when it gives any, as a new pod's volumes have new host
 * paths; each mount the processes had must then still be there, since CRIU
 * finds their files by the container's paths.
 */
export function restoredSpec(dumped: ContainerSpec, request: ContainerSpec | undefined): ContainerSpec {
  if (!request) return dumped;
  let mounts = dumped.mounts;
  if (request.mounts.length > 0) {
    const given = new Set(request.mounts.map((m) => m.containerPath));
    const lost = dumped.mounts.filter((m) => !given.has(m.containerPath)).map((m) => m.containerPath);
    if (lost.length > 0) throw new InvalidArgumentError(`the checkpointed container had mounts the request does not give: ${lost.join(', ')}`);
    mounts = request.mounts;
  }
  return {
    ...dumped,
    name: request.name,
    attempt: request.attempt,
    labels: request.labels,
    annotations: request.annotations,
    logPath: request.logPath || dumped.logPath,
    mounts,
  };
}
