import { readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The runtimes remove each container's cgroup; the parents the tests' pods
 * use stay in every hierarchy: /cradle (Cradle's default when a pod names
 * none) and /k8s.io (containerd's). rmdir only removes an empty cgroup, so
 * nothing in use is touched.
 */
export function removeTestCgroupParents(): void {
  let controllers: string[];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    return;
  }
  for (const c of controllers) {
    for (const parent of ['cradle', 'k8s.io']) {
      try {
        rmdirSync(join('/sys/fs/cgroup', c, parent));
      } catch {
        // absent, not empty, or not a hierarchy
      }
    }
  }
}
