import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { encodeRecord } from '../core/record-store.js';
import { POD_DUMP } from '../runtime/checkpoint-archive.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import { containerState } from '../runtime/container-record.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { isReady, type SandboxSpec } from '../sandbox/sandbox-spec.js';

const POD_CHECKPOINT_TIMEOUT_MS = 10 * 60_000;

/** A pod checkpoint's `pod.dump`: the pod as it was, and its containers' archives in the order they are restored. */
export interface PodDump {
  id: string;
  createdAt: bigint;
  spec: SandboxSpec;
  containers: string[];
}

/**
 * CheckpointPod: one archive holding `pod.dump` (the pod as Cradle knows
 * it, in the records' encoding) and one container checkpoint archive per container (`<id>.tar`,
 * each as CheckpointContainer writes it): the pod's running containers, or
 * those named. Every container keeps running; the archive appears whole or
 * not at all.
 */
export async function checkpointPod(
  sandboxes: SandboxManager,
  containers: ContainerManager,
  req: { podId: string; outputPath: string; containerIds: readonly string[] },
  scratchRoot: string,
): Promise<void> {
  const pod = sandboxes.get(req.podId);
  if (req.outputPath === '' || !isAbsolute(req.outputPath))
    throw new InvalidArgumentError(`output_path ${JSON.stringify(req.outputPath)} must be an absolute path for the archive`);
  if (!isReady(pod)) throw new FailedPreconditionError(`pod sandbox "${pod.id}" is not ready`);
  const chosen =
    req.containerIds.length > 0
      ? req.containerIds.map((id) => {
          const rec = containers.get(id);
          if (rec.sandboxId !== pod.id) throw new InvalidArgumentError(`container "${rec.id}" is not in pod sandbox "${pod.id}"`);
          return rec;
        })
      : containers.list({ sandboxId: pod.id }).filter((c) => containerState(c) === 'running');
  if (chosen.length === 0) throw new FailedPreconditionError(`pod sandbox "${pod.id}" has no running container to checkpoint`);
  await mkdir(scratchRoot, { recursive: true, mode: 0o700 });
  const work = await mkdtemp(join(scratchRoot, `pod-${pod.id.slice(0, 12)}-`));
  try {
    const dump: PodDump = { id: pod.id, createdAt: pod.createdAt, spec: pod.spec, containers: chosen.map((c) => c.id) };
    await writeFile(join(work, POD_DUMP), encodeRecord(dump));
    for (const rec of chosen) await containers.io.checkpoint(rec.id, join(work, `${rec.id}.tar`), 0);
    await containers.io.archives.write(work, req.outputPath, POD_CHECKPOINT_TIMEOUT_MS);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
