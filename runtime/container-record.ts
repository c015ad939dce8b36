import { matchesSelector } from '../core/labels.js';
import type { VersionedRecord } from '../core/record-store.js';
import type { ContainerSpec } from '../oci/container-spec.js';

export type ContainerState = 'created' | 'running' | 'exited';

export interface ContainerRecord extends VersionedRecord {
  schema: 1;
  sandboxId: string;
  /** The name reserved for it (name_pod_namespace_uid_attempt); records from before it was kept have none. */
  name?: string;
  spec: ContainerSpec;
  /** The image id (config digest) the container runs. */
  imageId: string;
  runtimeHandler: string;
  logPath: string;
  stopSignal: string;
  createdAt: bigint;
  startedAt: bigint | undefined;
  finishedAt: bigint | undefined;
  exitCode: number | undefined;
  reason: string;
  message: string;
  /** The container's init in the host PID namespace. */
  pid: number | undefined;
  /** Where its cgroup is, as given to the OCI runtime. */
  cgroupsPath: string;
  /**
   * A request under way, recorded before its first step: a crash leaves it
   * for recovery to undo (creating) or finish (removing).
   */
  phase?: 'creating' | 'removing';
  /**
   * Created from a checkpoint: StartContainer restores its processes from
   * the CRIU images in `<bundle>/checkpoint` instead of starting it.
   */
  restorePending?: true;
}

/** State follows from the timestamps: nothing is stored twice. */
export function containerState(rec: Pick<ContainerRecord, 'startedAt' | 'finishedAt'>): ContainerState {
  if (rec.finishedAt !== undefined) return 'exited';
  if (rec.startedAt !== undefined) return 'running';
  return 'created';
}

/** `name_podname_podnamespace_poduid_attempt`, as kubelet names containers. */
export function containerName(spec: Pick<ContainerSpec, 'name' | 'attempt'>, pod: { name: string; namespace: string; uid: string }): string {
  return `${spec.name}_${pod.name}_${pod.namespace}_${pod.uid}_${spec.attempt}`;
}

/** What ListContainers and ListContainerStats select by: id and pod by prefix, state, labels. */
export interface ContainerFilter {
  id?: string;
  sandboxId?: string;
  state?: ContainerState;
  labels?: Readonly<Record<string, string>>;
}

export function matchesFilter(rec: ContainerRecord, filter: ContainerFilter): boolean {
  return (
    (!filter.id || rec.id.startsWith(filter.id)) &&
    (!filter.sandboxId || rec.sandboxId.startsWith(filter.sandboxId)) &&
    (!filter.state || containerState(rec) === filter.state) &&
    matchesSelector(rec.spec.labels, filter.labels)
  );
}
