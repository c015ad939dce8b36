import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, isAbsolute, join } from 'node:path';
import { errorMessage, FailedPreconditionError, InternalError, InvalidArgumentError } from '../core/errors.js';
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
}

function tar(args: string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('tar', args, { timeout: timeoutMs, maxBuffer: 1024 * 1024 }, (err, _out, stderr) =>
      err ? reject(new InternalError(`tar ${args[0]}: ${stderr.trim() || err.message}`)) : resolve(),
    );
  });
}

/** `dir`'s contents as a tar archive at `location`, which appears whole or not at all. */
export async function writeArchive(dir: string, location: string, timeoutMs: number): Promise<void> {
  const partial = `${location}.${process.pid}.partial`;
  await mkdir(dirname(location), { recursive: true });
  try {
    await tar(['-c', '-C', dir, '-f', partial, '.'], timeoutMs);
    await rename(partial, location);
  } finally {
    await rm(partial, { force: true });
  }
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
    await mkdir(join(work, 'checkpoint'));
    await req.runtime.checkpoint(rec.id, join(work, 'checkpoint'), join(work, 'criu-work'), req.timeoutMs);
    const { phase: _phase, pid: _pid, ...kept } = rec;
    await writeFile(
      join(work, 'config.dump'),
      JSON.stringify(kept, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v)),
    );
    await copyFile(join(req.bundle, 'config.json'), join(work, 'spec.dump'));
    await tar(['-c', '-C', req.upperDir, '-f', join(work, 'rootfs-diff.tar'), '.'], req.timeoutMs);
    await copyFile(rec.logPath, join(work, 'container.log')).catch(() => undefined);
    await writeArchive(work, location, req.timeoutMs);
  } catch (err) {
    if (err instanceof FailedPreconditionError || err instanceof InvalidArgumentError) throw err;
    throw new InternalError(`checkpoint of container "${rec.id}" failed: ${errorMessage(err)}`, { cause: err });
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
