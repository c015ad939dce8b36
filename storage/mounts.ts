import { readFileSync } from 'node:fs';
import { errnoCode, InternalError } from '../core/errors.js';
import { loadNative } from '../native/index.js';

/** Mount points at or below `dir`, deepest first, from /proc/self/mountinfo. */
export function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => (l.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort()
    .reverse();
}

/** Unmounts a mount point; one that is not mounted (or not there) is fine. */
export async function unmount(path: string): Promise<void> {
  const native = loadNative();
  try {
    await native.umount2(path, native.constants.MNT_DETACH);
  } catch (err) {
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOENT') throw err;
  }
}

/**
 * Unmounts everything at or below `dir`, and refuses to report success while
 * anything is still mounted there: a recursive delete that crossed into an
 * idmapped layer or a volume would delete the image's or the host's files.
 * Every removal of a directory that can hold mounts comes here first.
 */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (const mp of mountsUnder(dir)) await unmount(mp);
  const left = mountsUnder(dir);
  if (left.length > 0) throw new InternalError(`cannot unmount ${left.join(', ')}; not deleting ${dir}`);
}

/** An idmapped bind mount of `source` at `target` (an empty directory or file), owners shifted through the user namespace at `userns`. */
export function idmappedBind(source: string, target: string, userns: string, recursive: boolean): Promise<void> {
  return loadNative().idmapMount(source, target, userns, recursive);
}
