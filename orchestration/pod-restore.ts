import { readdir, readFile, rm } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { errorMessage, InvalidArgumentError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import type { Logger } from '../core/logger.js';
import { decodeRecord } from '../core/record-store.js';
import type { ContainerSpec } from '../oci/container-spec.js';
import { type ContainerCheckpoint, POD_DUMP, readContainerCheckpoint } from '../runtime/checkpoint-archive.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import type { SandboxSpec } from '../sandbox/sandbox-spec.js';
import type { ContainerCreation } from './container-creation.js';
import type { PodDump } from './pod-checkpoint.js';
import type { PodLifecycle } from './pod-lifecycle.js';

export interface PodRestoreRequest {
  /** A CheckpointPod archive: an absolute path. */
  archive: string;
  /** The new pod's config; the checkpointed pod's own when not given. */
  spec: SandboxSpec | undefined;
  /** The new pod's handler; the checkpointed pod's when empty. */
  runtimeHandler: string;
  /** Containers' configs for the restore (restoredSpec), matched to the checkpoint's by name. */
  containers: readonly ContainerSpec[];
}

export interface PodRestoreDeps {
  sandboxes: SandboxManager;
  containers: ContainerManager;
  creation: ContainerCreation;
  pods: PodLifecycle;
  logger: Logger;
}

/**
 * RestorePod: a new pod sandbox from a CheckpointPod archive, with each of
 * its containers restored from its checkpoint and running, in the order
 * they were checkpointed. Everything is checked before the pod is made;
 * a failure after that removes the pod and all it restored, so nothing is
 * left half restored.
 */
export async function restorePod(
  d: PodRestoreDeps,
  req: PodRestoreRequest,
  signal?: AbortSignal,
): Promise<{ podId: string; restored: Array<{ name: string; id: string }> }> {
  if (req.archive === '' || !isAbsolute(req.archive))
    throw new InvalidArgumentError(`checkpoint_path ${JSON.stringify(req.archive)} must be the absolute path of a pod checkpoint archive`);
  const dir = await d.creation.unpack(req.archive);
  const unpacked: string[] = [dir];
  try {
    const dump = await readPodDump(dir, req.archive);
    const spec: SandboxSpec = { ...(req.spec ?? dump.spec), runtimeHandler: req.runtimeHandler || dump.spec.runtimeHandler };
    const checkpoints: ContainerCheckpoint[] = [];
    for (const id of dump.containers) {
      const inner = join(dir, `${id}.tar`);
      unpacked.push(await d.creation.unpack(inner));
      await rm(inner, { force: true });
      checkpoints.push(await readContainerCheckpoint(unpacked.at(-1) as string, `${req.archive}: ${id}.tar`));
    }
    const names = new Set(checkpoints.map((c) => c.record.spec.name));
    const unknown = req.containers.filter((c) => !names.has(c.name)).map((c) => c.name);
    if (unknown.length > 0) throw new InvalidArgumentError(`container_configs name containers the checkpoint does not have: ${unknown.join(', ')}`);
    await d.creation.refuseRestore({ spec }, req.archive);

    // Marked restoring until every container runs: a crash before that has the next start remove it all.
    const pod = await d.sandboxes.run(spec, signal, { restoring: true });
    try {
      const restored: Array<{ name: string; id: string }> = [];
      for (const checkpoint of checkpoints) {
        const request = req.containers.find((c) => c.name === checkpoint.record.spec.name);
        const rec = await d.creation.restoreFrom(pod.id, checkpoint, request);
        await d.containers.start(rec.id);
        failpoint('RestorePod/container-started');
        restored.push({ name: rec.spec.name, id: rec.id });
      }
      await d.sandboxes.restored(pod.id);
      return { podId: pod.id, restored };
    } catch (err) {
      d.logger.warn('pod restore failed; removing the pod it made', { id: pod.id, error: errorMessage(err) });
      await d.pods.remove(pod.id).catch((e: unknown) => d.logger.warn('cannot remove the half-restored pod', { id: pod.id, error: errorMessage(e) }));
      throw err;
    }
  } finally {
    for (const u of unpacked) await rm(u, { recursive: true, force: true });
  }
}

async function readPodDump(dir: string, archive: string): Promise<PodDump> {
  let dump: PodDump;
  try {
    dump = decodeRecord<PodDump>(await readFile(join(dir, POD_DUMP), 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`"${archive}" is not a pod checkpoint archive: ${POD_DUMP}: ${errorMessage(err)}`);
  }
  if (typeof dump.spec?.name !== 'string' || !Array.isArray(dump.containers))
    throw new InvalidArgumentError(`"${archive}": ${POD_DUMP} is not a pod as Cradle records one`);
  const present = new Set(await readdir(dir));
  const missing = dump.containers.filter((id) => !present.has(`${id}.tar`));
  if (missing.length > 0) throw new InvalidArgumentError(`"${archive}" lacks the checkpoints of containers ${missing.join(', ')}`);
  return dump;
}
