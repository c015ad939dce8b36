import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { errorMessage, FailedPreconditionError, InternalError, InvalidArgumentError, ResourceExhaustedError } from '../core/errors.js';
import { encodeRecord } from '../core/record-store.js';
import { type ArchiveWriter, CHECKPOINT_PARTS, tar } from './checkpoint-archive.js';
import type { ContainerRecord } from './container-record.js';
import { criuProblem } from './criu.js';
import type { OciRuntime } from './oci-runtime.js';

export interface CheckpointRequest {
  rec: ContainerRecord;
  runtime: OciRuntime;
  bundle: string;
  /** The container's writable layer. */
  upperDir: string;
  /** The archive to write: an absolute path. */
  location: string;
  timeoutMs: number;
  /** Where the parts are gathered before they become the archive. */
  scratchRoot: string;
  archives: ArchiveWriter;
}

/**
 * CheckpointContainer: the running container's processes dumped by CRIU
 * through its OCI runtime, which leaves it running, in an archive laid out
 * as CRI-O lays its own: `checkpoint/` (CRIU's images), `config.dump` (the
 * container as Cradle knows it), `spec.dump` (its OCI config),
 * `rootfs-diff.tar` (its writable layer) and `container.log`. The archive
 * appears whole or not at all.
 */
export async function checkpointContainer(req: CheckpointRequest): Promise<void> {
  const { rec, location } = req;
  if (location === '' || !isAbsolute(location)) throw new InvalidArgumentError(`location ${JSON.stringify(location)} must be an absolute path for the archive`);
  const problem = await criuProblem();
  if (problem) throw new FailedPreconditionError(`cannot checkpoint container "${rec.id}": ${problem}`);
  await mkdir(req.scratchRoot, { recursive: true, mode: 0o700 });
  const work = await mkdtemp(join(req.scratchRoot, `${rec.id.slice(0, 12)}-`));
  try {
    const part = (name: string) => join(work, name);
    await mkdir(part(CHECKPOINT_PARTS.images));
    await req.runtime.checkpoint(rec.id, part(CHECKPOINT_PARTS.images), part('criu-work'), req.timeoutMs);
    const { phase: _phase, pid: _pid, restorePending: _restore, ...kept } = rec;
    await writeFile(part(CHECKPOINT_PARTS.config), encodeRecord(kept));
    await copyFile(join(req.bundle, 'config.json'), part(CHECKPOINT_PARTS.spec));
    // Whiteouts are character devices and opaque directories an xattr: both must survive to the restore.
    await tar(['-c', '--xattrs', '--xattrs-include=trusted.*', '-C', req.upperDir, '-f', part(CHECKPOINT_PARTS.rootfsDiff), '.'], req.timeoutMs);
    await copyFile(rec.logPath, part(CHECKPOINT_PARTS.log)).catch(() => undefined);
    await req.archives.write(work, location, req.timeoutMs);
  } catch (err) {
    if (err instanceof FailedPreconditionError || err instanceof InvalidArgumentError || err instanceof ResourceExhaustedError) throw err;
    throw new InternalError(`checkpoint of container "${rec.id}" failed: ${errorMessage(err)}`, { cause: err });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
