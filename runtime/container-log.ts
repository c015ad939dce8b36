import { lstat, mkdir, unlink } from 'node:fs/promises';
import { isAbsolute, join, normalize, relative } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import { pathLengthProblem } from '../core/fs-util.js';
import type { ContainerSpec } from '../oci/container-spec.js';

/**
 * A container's log file: the pod's log directory joined with the
 * container's log path, never outside it. Either left empty (crictl can
 * send that) means `<root>/logs/<pod>/<name>_<attempt>.log`.
 */
export function containerLogPath(root: string, logDirectory: string, spec: ContainerSpec, sandboxId: string): string {
  if (!logDirectory || !spec.logPath) return join(root, 'logs', sandboxId, `${spec.name}_${spec.attempt}.log`);
  if (!isAbsolute(logDirectory)) throw new InvalidArgumentError(`the pod's log_directory ${JSON.stringify(logDirectory)} must be absolute`);
  if (isAbsolute(spec.logPath)) throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath)} must be relative to the pod's log directory`);
  const path = normalize(join(logDirectory, spec.logPath));
  const rel = relative(logDirectory, path);
  if (rel === '' || rel.startsWith('..') || isAbsolute(rel))
    throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath)} leaves the pod's log directory`);
  const tooLong = pathLengthProblem(path);
  if (tooLong) throw new InvalidArgumentError(`log_path ${JSON.stringify(spec.logPath.slice(0, 80))} in the pod's log directory ${tooLong}`);
  return path;
}

/** Makes the log file's directory; a symlink left at the path (broken, or pointing anywhere on the host) must not receive the container's output. */
export async function prepareLogFile(path: string): Promise<void> {
  await mkdir(join(path, '..'), { recursive: true });
  if ((await lstat(path).catch(() => undefined))?.isSymbolicLink()) await unlink(path);
}
