import { join } from 'node:path';
import type { CgroupDriver } from '../core/config/config.js';
import { InvalidArgumentError } from '../core/errors.js';

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

/** Names a cgroup directory must not take: the kernel's own files in it. */
const INTERFACE_FILE =
  /^(cgroup|cpu|cpuacct|cpuset|memory|io|blkio|pids|hugetlb|rdma|misc|devices|freezer|net_cls|net_prio|perf_event)\.|^(tasks|notify_on_release|release_agent)$/;

/**
 * kubelet's cgroup_parent must be written for the driver it shares with the
 * runtime. For systemd it is a slice, as a name ("kubepods-besteffort-pod<uid>.slice")
 * or as the path kubelet really sends
 * ("/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod<uid>.slice"),
 * every element a slice. For cgroupfs it is a path below the hierarchy's
 * root ("/kubepods/besteffort/pod<uid>"), never a filesystem path such as
 * /sys/fs/cgroup/... A mismatch means kubelet and the runtime disagree on
 * the driver. Returns the parent as the driver uses it (the slice itself
 * for systemd).
 */
export function checkCgroupParent(driver: CgroupDriver, parent: string): string {
  if (parent === '') return parent;
  if (/\p{Cc}/u.test(parent) || parent.length > 4096)
    throw new InvalidArgumentError(`cgroup_parent ${JSON.stringify(parent.slice(0, 80))} holds control characters or is too long`);
  if (driver === 'systemd') {
    const elements = parent.startsWith('/') ? parent.slice(1).split('/') : [parent];
    if (!elements.every(isSliceName)) {
      throw new InvalidArgumentError(
        `cgroup_parent ${JSON.stringify(parent)} is not a systemd slice (like "kubepods-besteffort-pod1234.slice" or "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234.slice"); is kubelet's --cgroup-driver "systemd" like Cradle's cgroup_manager?`,
      );
    }
    return elements[elements.length - 1] as string;
  }
  if (!parent.startsWith('/') || parent.endsWith('.slice')) {
    throw new InvalidArgumentError(
      `cgroup_parent ${JSON.stringify(parent)} is not an absolute cgroupfs path (like "/kubepods/besteffort/pod1234"); is kubelet's --cgroup-driver "cgroupfs" like Cradle's cgroup_manager?`,
    );
  }
  if (parent === '/sys/fs/cgroup' || parent.startsWith('/sys/fs/cgroup/')) {
    throw new InvalidArgumentError(
      `cgroup_parent ${JSON.stringify(parent)} is a filesystem path; give the path below the cgroup hierarchy's root, like "/kubepods/besteffort/pod1234"`,
    );
  }
  const elements = parent === '/' ? [] : parent.slice(1).replace(/\/$/, '').split('/');
  for (const e of elements) {
    if (e === '' || e === '.' || e === '..' || INTERFACE_FILE.test(e))
      throw new InvalidArgumentError(`cgroup_parent ${JSON.stringify(parent)}: ${JSON.stringify(e)} cannot name a cgroup`);
  }
  return parent;
}

/** The pod's own cgroup below the hierarchy root: its parent (cgroupfs) or its slice expanded (systemd); the default parent when it names none. */
export function podCgroupDir(driver: CgroupDriver, parent: string): string {
  const p = checkCgroupParent(driver, parent) || defaultCgroupParent(driver);
  return driver === 'systemd' ? join('/', expandSlice(p)) : p;
}

/** The OCI spec's linux.cgroupsPath: "slice:prefix:name" for systemd, a path for cgroupfs. */
export function containerCgroupsPath(driver: CgroupDriver, parent: string, id: string): string {
  const p = checkCgroupParent(driver, parent) || defaultCgroupParent(driver);
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
