import { join } from 'node:path';
import { InvalidArgumentError } from '../core/errors.js';

export type CgroupDriver = 'cgroupfs' | 'systemd';

/** Where a pod's containers go when kubelet names no cgroup parent. */
export function defaultCgroupParent(driver: CgroupDriver): string {
  return driver === 'systemd' ? 'system.slice' : '/cradle';
}

/** A slice unit name whose dashes systemd can expand into parent slices. */
function isSliceName(name: string): boolean {
  if (name === '-.slice') return true;
  if (!/^[A-Za-z0-9_.\\-]+\.slice$/.test(name)) return false;
  const stem = name.slice(0, -'.slice'.length);
  return stem !== '' && !stem.startsWith('-') && !stem.endsWith('-') && !stem.includes('--');
}

/**
 * kubelet's cgroup_parent must be written for the driver it shares with the
 * runtime: a slice name for systemd ("kubepods-besteffort-pod<uid>.slice"),
 * an absolute path for cgroupfs ("/kubepods/besteffort/pod<uid>"). A
 * mismatch means kubelet and the runtime disagree on the driver.
 */
export function checkCgroupParent(driver: CgroupDriver, parent: string): void {
  if (parent === '') return;
  if (driver === 'systemd') {
    if (!isSliceName(parent)) {
      throw new InvalidArgumentError(`cgroup_parent ${JSON.stringify(parent)} is not a systemd slice name (like "kubepods-besteffort-pod1234.slice"); is kubelet's --cgroup-driver "systemd" like Cradle's cgroup_manager?`);
    }
    return;
  }
  if (!parent.startsWith('/') || parent.split('/').includes('..') || parent.endsWith('.slice')) {
    throw new InvalidArgumentError(`cgroup_parent ${JSON.stringify(parent)} is not an absolute cgroupfs path (like "/kubepods/besteffort/pod1234"); is kubelet's --cgroup-driver "cgroupfs" like Cradle's cgroup_manager?`);
  }
}

/** The OCI spec's linux.cgroupsPath: "slice:prefix:name" for systemd, a path for cgroupfs. */
export function containerCgroupsPath(driver: CgroupDriver, parent: string, id: string): string {
  const p = parent || defaultCgroupParent(driver);
  return driver === 'systemd' ? `${p}:cradle:${id}` : join(p, `cradle-${id}`);
}

/**
 * systemd nests slices by their dashes: "a-b-c.slice" lives in
 * "a.slice/a-b.slice/a-b-c.slice"; "-.slice" is the root.
 */
export function expandSlice(slice: string): string {
  if (slice === '-.slice') return '';
  const stem = slice.slice(0, -'.slice'.length);
  const parts = stem.split('-');
  return parts.map((_, i) => `${parts.slice(0, i + 1).join('-')}.slice`).join('/');
}

/**
 * The cgroup's directory below a hierarchy's root, for reading its files:
 * a cgroupfs path as it is, a systemd "slice:prefix:name" as the scope
 * systemd made for it.
 */
export function cgroupDir(cgroupsPath: string): string {
  if (isSystemdCgroupsPath(cgroupsPath)) {
    const [slice, prefix, name] = cgroupsPath.split(':') as [string, string, string];
    return join('/', expandSlice(slice), `${prefix}-${name}.scope`);
  }
  return cgroupsPath;
}

export function isSystemdCgroupsPath(cgroupsPath: string): boolean {
  return !cgroupsPath.startsWith('/') && cgroupsPath.split(':').length === 3;
}

/** The transient scope conmon runs in under the systemd driver, so restarting Cradle's service leaves it alone. */
export function conmonScope(id: string): string {
  return `cradle-conmon-${id}.scope`;
}
