import { errorMessage } from '../core/errors.js';
import { failpoint } from '../core/failpoints.js';
import type { Logger } from '../core/logger.js';
import type { ObjectStore } from '../core/object-store.js';
import type { ContainerRecord } from './container-record.js';
import { teardownContainer, type TeardownContext } from './container-teardown.js';

/**
 * RemoveContainer answers once the container is retired (its record says
 * "removing" and it is gone from every list); deleting the OCI container,
 * cgroup, root filesystem and bundle happens here, after the answer. A
 * crash in between leaves the record, and recovery finishes the removal.
 * Whatever needs the container's things gone first (the pod's removal, an
 * image's) waits for `settled`.
 */
export class ContainerRemovals {
  private readonly pending = new Map<string, { sandboxId: string; done: Promise<void> }>();

  constructor(
    private readonly store: ObjectStore<ContainerRecord>,
    private readonly teardown: TeardownContext,
    private readonly logger: Logger,
  ) {}

  /** `rec` must be retired already (phase "removing", its record written). */
  start(rec: ContainerRecord): void {
    const done = (async () => {
      try {
        await teardownContainer(rec, this.teardown, false);
        failpoint('RemoveContainer/torn-down');
        this.store.purge(rec.id);
        this.logger.info('container removed', { id: rec.id });
      } catch (err) {
        // Listed again (still "removing"): kubelet's RemoveContainer, or the next start, tries again.
        this.logger.error('cannot remove a container; it is listed again for RemoveContainer to retry', { id: rec.id, error: errorMessage(err) });
        this.store.show(rec);
      } finally {
        this.pending.delete(rec.id);
      }
    })();
    this.pending.set(rec.id, { sandboxId: rec.sandboxId, done });
  }

  /** Resolves once the removals under way (of one pod's containers, or all) are finished. */
  async settled(sandboxId?: string): Promise<void> {
    await Promise.all([...this.pending.values()].filter((p) => sandboxId === undefined || p.sandboxId === sandboxId).map((p) => p.done));
  }

  get size(): number {
    return this.pending.size;
  }
}
