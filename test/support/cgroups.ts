import { readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * The runtimes remove each container's cgroup; the parents the tests' pods
 * use stay in every hierarchy: /cradle (Cradle's default when a pod names
 * none) and /k8s.io (containerd's). A simulated reboot can also leave a
 * container cgroup whose processes died only after its removal was tried
 * (a real reboot empties cgroups itself). rmdir only removes an empty
 * cgroup, so nothing in use is touched.
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
      const dir = join('/sys/fs/cgroup', c, parent);
      let children: string[] = [];
      try {
        children = readdirSync(dir, { withFileTypes: true })
          .filter((e) => e.isDirectory())
          .map((e) => e.name);
      } catch {
        continue;
      }
      for (const child of children) {
        try {
          rmdirSync(join(dir, child));
        } catch {
          // still in use
        }
      }
      try {
        rmdirSync(dir);
      } catch {
        // not empty
      }
    }
  }
}
