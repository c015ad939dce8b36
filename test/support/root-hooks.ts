import { removeTestCgroupParents } from './cgroups.js';
import { destroyAllNodes } from './test-node.js';
import { killAllTracked } from './processes.js';

// A suite that forgot a node, or was interrupted, still leaves nothing behind.
after(async function () {
  this.timeout(60_000);
  await destroyAllNodes();
  killAllTracked();
  removeTestCgroupParents();
});
