import { existsSync } from 'node:fs';
import { InvalidArgumentError } from '../core/errors.js';
import type { ContainerSpec } from '../oci/container-spec.js';
import { checkPropagation } from '../oci/mount-propagation.js';
import type { HandlerFeatures } from './runtime-handlers.js';

/** What only the host can tell about a container's mounts: the paths exist, propagate as asked, and rro is possible. */
export function checkMounts(spec: ContainerSpec, features: HandlerFeatures | undefined): void {
  for (const m of spec.mounts) {
    if (!existsSync(m.hostPath)) throw new InvalidArgumentError(`mount host path ${JSON.stringify(m.hostPath)} does not exist`);
    if (m.recursiveReadOnly) {
      if (!m.readonly || m.propagation !== 'private')
        throw new InvalidArgumentError(`mount ${m.containerPath}: recursive_read_only needs readonly and private propagation`);
      if (!features?.recursiveReadOnlyMounts)
        throw new InvalidArgumentError(`mount ${m.containerPath}: the runtime handler does not support recursive read-only mounts`);
    }
  }
  checkPropagation(spec.mounts);
}
