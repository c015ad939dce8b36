import { readdirSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { destroyAllNodes } from './test-node.js';

/**
 * runc removes each container's cgroup; the parent the tests' pods use
 * (/cradle, the default when a pod names none) stays in every hierarchy.
 * rmdir only removes an empty cgroup, so nothing in use is touched.
 */
function removeTestCgroupParents(): void {
  let controllers: string[];
  try {
    controllers = readdirSync('/sys/fs/cgroup');
  } catch {
    return;
  }
  for (const c of controllers) {
    try {
      rmdirSync(join('/sys/fs/cgroup', c, 'cradle'));
    } catch {
      // absent, not empty, or not a hierarchy
    }
  }
}
import { killAllTracked } from './processes.js';

// A suite that forgot a node, or was interrupted, still leaves nothing behind.
after(async function () {
  this.timeout(60_000);
  await destroyAllNodes();
  killAllTracked();
  removeTestCgroupParents();
});
