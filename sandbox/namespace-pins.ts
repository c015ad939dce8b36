import { readlinkSync, statSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { errnoCode } from '../core/errors.js';
import { loadNative, type PinnableNamespace } from '../native/index.js';
import { idMapText, type NamespacePaths, type UserNamespace } from '../oci/namespaces.js';

/** Namespace files of a pod: the pinned net/ipc/uts (and user), and the pid namespace of its init. */
export type Pins = NamespacePaths;

/** Pins new namespaces of `kinds`; with `userns`, a user namespace with its id maps first, owning the others. */
export function pinNamespaces(
  dir: string,
  kinds: readonly PinnableNamespace[],
  hostname: string,
  sysctls: ReadonlyArray<readonly [string, string]>,
  userns?: UserNamespace,
): Promise<Partial<Record<PinnableNamespace, string>>> {
  const all: PinnableNamespace[] = userns ? ['user', ...kinds] : [...kinds];
  if (all.length === 0) return Promise.resolve({});
  if (!userns) return loadNative().pinNamespaces(dir, all, hostname, sysctls);
  return loadNative().pinNamespaces(dir, all, hostname, sysctls, idMapText(userns.uids), idMapText(userns.gids));
}

/** A pod's own /dev/shm: a tmpfs of `sizeBytes` that no one can execute from. */
export async function mountShm(path: string, sizeBytes: number): Promise<void> {
  const native = loadNative();
  await mkdir(path, { mode: 0o1777 });
  const flags = native.constants.MS_NOSUID | native.constants.MS_NODEV | native.constants.MS_NOEXEC;
  await native.mount('shm', path, 'tmpfs', flags, `mode=1777,size=${sizeBytes}`);
}

/** Unmounts a pin (or any mount point) and removes it; a pin already gone is fine. */
export async function unmountAndRemove(path: string): Promise<void> {
  const native = loadNative();
  try {
    await native.umount2(path, native.constants.MNT_DETACH | native.constants.UMOUNT_NOFOLLOW);
  } catch (err) {
    // EINVAL: not a mount point (already unmounted); ENOENT: not there at all.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOENT') throw err;
  }
  await rm(path, { force: true, recursive: true });
}

export async function unpinNamespaces(pins: Pins): Promise<void> {
  for (const path of Object.values(pins)) await unmountAndRemove(path);
}

/** A pin is alive when its file is still a mount of a namespace (not just an empty file left after a reboot). */
export function pinAlive(path: string, mountinfo: string): boolean {
  return mountinfo.split('\n').some((line) => line.split(' ')[4] === path);
}

/**
 * True when `pid` is still the init of the PID namespace pinned at `pin`
 * (a recycled pid would be in another namespace).
 */
export function isPodInit(pid: number, pin: string): boolean {
  try {
    return readlinkSync(`/proc/${pid}/ns/pid`) === `pid:[${statSync(pin).ino}]`;
  } catch {
    return false;
  }
}
