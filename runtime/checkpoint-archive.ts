import { mkdir, mkdtemp, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { exitDescription, runChild } from '../native/child-process.js';
import { errnoCode, errorMessage, InternalError, InvalidArgumentError, NotFoundError, ResourceExhaustedError } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import { newId } from '../core/ids.js';
import type { Logger } from '../core/logger.js';
import { decodeRecord, RecordStore, type VersionedRecord } from '../core/record-store.js';
import type { ContainerRecord } from './container-record.js';

/** The parts of a container checkpoint archive (laid out as CRI-O lays its own). */
export const CHECKPOINT_PARTS = {
  /** CRIU's images of the processes. */
  images: 'checkpoint',
  /** The container's record as Cradle kept it, in the records' encoding. */
  config: 'config.dump',
  /** Its OCI config, for people and other tools. */
  spec: 'spec.dump',
  /** Its writable layer, whiteouts included. */
  rootfsDiff: 'rootfs-diff.tar',
  log: 'container.log',
} as const;

/** A pod checkpoint's own part; each container's archive beside it is `<container id>.tar`. */
export const POD_DUMP = 'pod.dump';

/**
 * A failed tar as the caller should hear it: a full filesystem is
 * RESOURCE_EXHAUSTED (a checkpoint can be as large as the processes'
 * memory), anything else the daemon's fault.
 */
export function tarFailure(operation: string, stderr: string, fallback: string): InternalError | ResourceExhaustedError {
  const message = `tar ${operation}: ${stderr.trim() || fallback}`;
  return /No space left on device|Disk quota exceeded/.test(stderr) ? new ResourceExhaustedError(message) : new InternalError(message);
}

export async function tar(args: string[], timeoutMs: number): Promise<void> {
  const r = await runChild('tar', args, { timeoutMs, killSignal: 'SIGTERM', maxBuffer: 1024 * 1024 }).catch((err: unknown) => {
    throw tarFailure(args[0] as string, '', errorMessage(err));
  });
  if (r.code !== 0) throw tarFailure(args[0] as string, r.stderr, exitDescription(r));
}

/** A partial archive beside its destination, recorded before its first byte is written. */
interface UnfinishedArchive extends VersionedRecord {
  schema: 1;
  partial: string;
}

/**
 * Writes archives where callers ask (CheckpointContainer's location,
 * CheckpointPod's output path), each appearing whole or not at all: tar
 * writes a file beside the destination, renamed over it when complete.
 * That file is recorded first, so a daemon killed while writing removes
 * it at its next start instead of leaving it among the caller's files.
 */
export class ArchiveWriter {
  private readonly unfinished: RecordStore<UnfinishedArchive>;

  constructor(journalDir: string) {
    this.unfinished = new RecordStore<UnfinishedArchive>(journalDir, 'unfinished archive');
  }

  /** `dir`'s contents as a tar archive at `location`. */
  async write(dir: string, location: string, timeoutMs: number): Promise<void> {
    const id = newId();
    // Unique per write: two checkpoints to one location never share a partial file.
    const partial = `${location}.${id.slice(0, 12)}.partial`;
    await mkdir(dirname(location), { recursive: true });
    this.unfinished.write({ schema: 1, id, partial });
    try {
      await tar(['-c', '-C', dir, '-f', partial, '.'], timeoutMs);
      failpoint('Checkpoint/archive-written');
      await rename(partial, location);
    } finally {
      await rm(partial, { force: true });
      this.unfinished.remove(id);
    }
  }

  /** At start: the partial archives a killed daemon was writing. */
  async removeUnfinished(logger: Logger): Promise<void> {
    for (const rec of this.unfinished.loadAll(logger)) {
      logger.info('removing the partial archive of a checkpoint the daemon was stopped in', { path: rec.partial });
      await rm(rec.partial, { force: true });
      this.unfinished.remove(rec.id);
    }
  }
}

/**
 * Unpacks the archive at `archive` into a new directory under `scratchRoot`
 * and returns it; the caller removes it. A path that is not a readable tar
 * archive is the caller's mistake.
 */
export async function extractArchive(archive: string, scratchRoot: string, what: string, timeoutMs: number): Promise<string> {
  const info = await stat(archive).catch((err: unknown) => {
    if (errnoCode(err) === 'ENOENT') throw new NotFoundError(`${what} "${archive}" does not exist`);
    throw err;
  });
  if (!info.isFile()) throw new InvalidArgumentError(`${what} "${archive}" is not a file`);
  await mkdir(scratchRoot, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(join(scratchRoot, 'restore-'));
  try {
    // --same-owner and numeric ids: a writable layer's files keep the owners they had, whatever this host's names.
    await tar(['-x', '--same-owner', '--numeric-owner', '-C', dir, '-f', archive], timeoutMs).catch((err: unknown) => {
      if (err instanceof ResourceExhaustedError) throw err;
      throw new InvalidArgumentError(`${what} "${archive}" is not a readable tar archive: ${err instanceof Error ? err.message : String(err)}`);
    });
    return dir;
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** An unpacked container checkpoint: the container as it was, and where its parts are. */
export interface ContainerCheckpoint {
  record: ContainerRecord;
  imagesDir: string;
  rootfsDiff: string;
}

/** Reads an unpacked container checkpoint, refusing one that lacks a part a restore needs. */
export async function readContainerCheckpoint(dir: string, archive: string): Promise<ContainerCheckpoint> {
  const missing = async (part: string) => !(await stat(join(dir, part)).catch(() => undefined));
  for (const part of [CHECKPOINT_PARTS.config, CHECKPOINT_PARTS.rootfsDiff, join(CHECKPOINT_PARTS.images, 'inventory.img')])
    if (await missing(part)) throw new InvalidArgumentError(`"${archive}" is not a container checkpoint archive: it has no ${part}`);
  let record: ContainerRecord;
  try {
    record = decodeRecord<ContainerRecord>(await readFile(join(dir, CHECKPOINT_PARTS.config), 'utf8'));
  } catch (err) {
    throw new InvalidArgumentError(`"${archive}": ${CHECKPOINT_PARTS.config} is unreadable: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (typeof record.spec?.name !== 'string' || typeof record.imageId !== 'string' || !Array.isArray(record.spec.mounts))
    throw new InvalidArgumentError(`"${archive}": ${CHECKPOINT_PARTS.config} is not a container as Cradle records one`);
  return { record, imagesDir: join(dir, CHECKPOINT_PARTS.images), rootfsDiff: join(dir, CHECKPOINT_PARTS.rootfsDiff) };
}
