import { join } from 'node:path';
import { errorMessage, InternalError } from '../core/errors.js';
import { tar } from './checkpoint-archive.js';
import { type ConmonLaunch, launchWithConmon } from './conmon.js';
import { criuLogError } from './criu.js';

/** Where a restored container's CRIU images wait in its bundle until StartContainer. */
export function restoreImagesDir(bundle: string): string {
  return join(bundle, 'checkpoint');
}

/** How long unpacking a restored container's writable layer may take. */
const UNPACK_TIMEOUT_MS = 10 * 60_000;

/**
 * A checkpoint's writable layer, unpacked into a new container's upper
 * directory before its overlay is mounted: whiteouts (character devices)
 * and opaque directories (trusted.* xattrs) keep hiding what they hid,
 * and files keep their numeric owners.
 */
export function unpackWritableLayer(archive: string, upper: string): Promise<void> {
  return tar(['-x', '--xattrs', '--xattrs-include=trusted.*', '--same-owner', '--numeric-owner', '-C', upper, '-f', archive], UNPACK_TIMEOUT_MS);
}

/**
 * conmon runs `<runtime> restore` from the CRIU images in `launch.restore`:
 * the container's processes come back in its new namespaces and cgroup,
 * running. Returns the restored init's pid; a failure says what CRIU said.
 */
export async function restoreWithConmon(launch: ConmonLaunch): Promise<number> {
  try {
    return await launchWithConmon(launch);
  } catch (err) {
    const images = launch.restore ?? launch.bundle;
    const criu = (await criuLogError(join(images, 'restore.log'))) ?? (await criuLogError(join(launch.bundle, 'restore.log')));
    throw new InternalError(`${errorMessage(err)}${criu ? ` (CRIU: ${criu})` : ''}`, { cause: err });
  }
}
