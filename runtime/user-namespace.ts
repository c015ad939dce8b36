import { statSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import type { PodContext } from '../oci/container-bundle.js';
import type { ContainerSpec, MountSpec } from '../oci/container-spec.js';
import { hostRootId } from '../oci/namespaces.js';
import { idmappedBind } from '../storage/mounts.js';
import type { RootfsIdmap } from '../storage/rootfs-store.js';

/**
 * A container of a pod with a user namespace of its own joins that
 * namespace; what it sees of the host's files is idmapped through it, so
 * that a file the image or the host owns as root is the container's root's.
 */

/** How the root filesystem is idmapped; undefined for a pod in the host's user namespace. */
export function rootfsIdmap(pod: PodContext, spec: ContainerSpec): RootfsIdmap | undefined {
  if (!pod.userns) return undefined;
  // kubelet refuses the same: privilege in a user namespace is not the host's.
  if (spec.security.privileged) throw new InvalidArgumentError('a privileged container cannot run in a pod with a user namespace of its own');
  const userns = pod.namespaces.user;
  const rootUid = hostRootId(pod.userns.uids);
  const rootGid = hostRootId(pod.userns.gids);
  if (userns === undefined || rootUid === undefined || rootGid === undefined)
    throw new InvalidArgumentError(`pod sandbox "${pod.id}" has no user namespace to join`);
  return { userns, rootUid, rootGid };
}

/**
 * The container's mounts with each host path replaced by an idmapped bind of
 * it under `<bundle>/volumes` (the bundle is unmounted before it is ever
 * deleted). Returned unchanged without a user namespace.
 */
export async function idmapVolumes(bundle: string, mounts: readonly MountSpec[], idmap: RootfsIdmap | undefined): Promise<MountSpec[]> {
  if (!idmap) return [...mounts];
  const out: MountSpec[] = [];
  for (const [i, m] of mounts.entries()) {
    const target = join(bundle, 'volumes', String(i));
    if (statSync(m.hostPath).isDirectory()) await mkdir(target, { recursive: true });
    else {
      await mkdir(join(bundle, 'volumes'), { recursive: true });
      await writeFile(target, '');
    }
    await idmappedBind(m.hostPath, target, idmap.userns, true);
    out.push({ ...m, hostPath: target });
  }
  return out;
}
