import { rm } from 'node:fs/promises';
import { FailedPreconditionError, NotFoundError } from '../core/errors.js';
import type { ImageRecord } from '../image/image-record.js';
import type { ImageService } from '../image/image-service.js';
import { parseReference } from '../image/reference.js';
import type { ContainerSpec } from '../oci/container-spec.js';
import { type ContainerCheckpoint, extractArchive, readContainerCheckpoint } from '../runtime/checkpoint-archive.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import type { ContainerPlan } from '../runtime/container-plan.js';
import { containerName, type ContainerRecord } from '../runtime/container-record.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { isReady, type SandboxRecord } from '../sandbox/sandbox-spec.js';
import { isCheckpointArchive, restoredSpec } from './container-restore.js';

/** How long unpacking a checkpoint archive may take. */
const EXTRACT_TIMEOUT_MS = 10 * 60_000;

/**
 * CreateContainer across domains: a container is made from its pod (which
 * must be READY) and its image (which must be pulled). Both are looked up
 * and handed to the runtime in one turn of the event loop, so the image
 * cannot be removed between its look-up and the container's hold on it.
 * An image that is an archive's absolute path restores a checkpoint, as
 * CRI-O does.
 */
export class ContainerCreation {
  constructor(
    private readonly sandboxes: SandboxManager,
    private readonly images: ImageService,
    private readonly containers: ContainerManager,
    /** Where checkpoint archives are unpacked (swept at start). */
    private readonly scratchRoot: string,
  ) {}

  create(sandboxId: string, spec: ContainerSpec): Promise<ContainerRecord> {
    if (isCheckpointArchive(spec.image)) return this.restore(sandboxId, spec.image, spec);
    const pod = this.readyPod(sandboxId);
    const image = this.images.resolve(spec.image);
    if (!image) {
      // An unreadable reference is the caller's mistake, not a missing image.
      parseReference(spec.image);
      throw new NotFoundError(`image "${spec.image}" not found; pull it first`);
    }
    return this.containers.create(this.plan(pod, spec, image));
  }

  /**
   * A container made from the checkpoint archive at `archive`, in pod
   * `sandboxId`, with `request`'s name and volumes (restoredSpec). It is
   * created; StartContainer brings its processes back. The image the
   * checkpointed container ran must be here.
   */
  async restore(sandboxId: string, archive: string, request: ContainerSpec | undefined): Promise<ContainerRecord> {
    await this.refuseRestore(this.readyPod(sandboxId), archive);
    const dir = await this.unpack(archive);
    try {
      return await this.restoreFrom(sandboxId, await readContainerCheckpoint(dir, archive), request);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  /** A checkpoint archive unpacked under the scratch root; the caller removes it. */
  unpack(archive: string): Promise<string> {
    return extractArchive(archive, this.scratchRoot, 'checkpoint archive', EXTRACT_TIMEOUT_MS);
  }

  /** FAILED_PRECONDITION when containers of `pod` cannot be restored here. */
  async refuseRestore(pod: Pick<SandboxRecord, 'spec'>, archive: string): Promise<void> {
    const problem = await this.containers.io.restoreProblem(pod.spec.runtimeHandler, pod.spec.userns !== undefined);
    if (problem) throw new FailedPreconditionError(`cannot restore from "${archive}": ${problem}`);
  }

  /** restore, from a checkpoint already unpacked. */
  async restoreFrom(sandboxId: string, checkpoint: ContainerCheckpoint, request: ContainerSpec | undefined): Promise<ContainerRecord> {
    const spec = restoredSpec(checkpoint.record.spec, request);
    const pod = this.readyPod(sandboxId);
    const image = this.images.resolve(checkpoint.record.imageId);
    if (!image) throw new NotFoundError(`the checkpointed container's image "${spec.image}" (${checkpoint.record.imageId}) is not here; pull it first`);
    return this.containers.create({ ...this.plan(pod, spec, image), restore: { imagesDir: checkpoint.imagesDir, rootfsDiff: checkpoint.rootfsDiff } });
  }

  private readyPod(sandboxId: string): SandboxRecord {
    const pod = this.sandboxes.get(sandboxId);
    if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
    return pod;
  }

  private plan(pod: SandboxRecord, spec: ContainerSpec, image: ImageRecord): ContainerPlan {
    return {
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
    };
  }
}
