import type { ContainerSpec } from '../oci/container-spec.js';
import type { PodContext } from '../oci/container-bundle.js';
import type { ImageConfigInfo } from '../oci/image-config.js';

/**
 * What a new container is made from, resolved by the caller before the
 * runtime sees it: the request, the pod it joins and the image it runs.
 */
export interface ContainerPlan {
  /** The name kubelet's metadata reserves for it. */
  name: string;
  spec: ContainerSpec;
  pod: PodContext & {
    runtimeHandler: string;
    /** cgroup_parent as kubelet sent it. */
    cgroupParent: string;
    logDirectory: string;
  };
  image: { id: string; layers: readonly string[]; config: ImageConfigInfo };
  /** A container restored from a checkpoint: its CRIU images and its writable layer's archive. */
  restore?: { imagesDir: string; rootfsDiff: string };
}
