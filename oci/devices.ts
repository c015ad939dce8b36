import { lstatSync, readdirSync, type Stats, statSync } from 'node:fs';
import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';
import type { HostDevice } from './container-spec.js';

/** A device of the container config, as it is on the host. */
export function hostDevice(d: { containerPath: string; hostPath: string; permissions: string }): HostDevice {
  let st: Stats;
  try {
    st = statSync(d.hostPath);
  } catch {
    throw new InvalidArgumentError(`device ${JSON.stringify(d.hostPath)} does not exist`);
  }
  if (!st.isCharacterDevice() && !st.isBlockDevice()) throw new InvalidArgumentError(`${JSON.stringify(d.hostPath)} is not a device node`);
  if (!/^[rwm]+$/.test(d.permissions || 'rwm')) throw new InvalidArgumentError(`device ${d.hostPath}: permissions must be made of r, w and m`);
  const rdev = st.rdev;
  return {
    containerPath: d.containerPath || d.hostPath,
    type: st.isCharacterDevice() ? 'c' : 'b',
    major: ((rdev >> 8) & 0xfff) | (Math.floor(rdev / 2 ** 32) & ~0xfff),
    minor: (rdev & 0xff) | ((rdev >> 12) & 0xfff00),
    fileMode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    permissions: d.permissions || 'rwm',
  };
}

/** Every device node under the host's /dev, for privileged containers (as CRI-O gives them). */
export function allHostDevices(): HostDevice[] {
  const out: HostDevice[] = [];
  const walk = (dir: string) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const name of names) {
      const path = join(dir, name);
      // pts and shm are mounted for the container; these are not devices to copy.
      if (path === '/dev/pts' || path === '/dev/shm' || path === '/dev/mqueue') continue;
      try {
        const st = lstatSync(path);
        if (st.isDirectory()) walk(path);
        else if (st.isCharacterDevice() || st.isBlockDevice()) out.push(hostDevice({ containerPath: path, hostPath: path, permissions: 'rwm' }));
      } catch {
        // gone meanwhile
      }
    }
  };
  walk('/dev');
  return out;
}
