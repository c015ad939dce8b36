import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { FailedPreconditionError, InvalidArgumentError } from '../core/errors.js';
import { writeArchive } from '../runtime/container-checkpoint.js';
import type { ContainerManager } from '../runtime/container-manager.js';
import { containerState } from '../runtime/container-record.js';
import type { SandboxManager } from '../sandbox/sandbox-manager.js';
import { isReady } from '../sandbox/sandbox-spec.js';

const POD_CHECKPOINT_TIMEOUT_MS = 10 * 60_000;

/**
 * CheckpointPod: one archive holding `pod.dump` (the pod as Cradle knows
 * it) and one container checkpoint archive per container (`<id>.tar`,
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
    await writeFile(join(work, 'pod.dump'), JSON.stringify({ id: pod.id, createdAt: pod.createdAt.toString(), spec: pod.spec }));
    for (const rec of chosen) await containers.io.checkpoint(rec.id, join(work, `${rec.id}.tar`), 0);
    await writeArchive(work, req.outputPath, POD_CHECKPOINT_TIMEOUT_MS);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
