import { containerState, type ContainerRecord, type ContainerState as DomainState } from '../../runtime/container-record.js';
import type { Propagation } from '../../oci/container-spec.js';
import { ContainerState, MountPropagation, type Container, type ContainerStatus } from '../generated/api.js';
import type { Init } from '../service-types.js';

export const PROPAGATION: Record<MountPropagation, Propagation> = {
  [MountPropagation.PROPAGATION_PRIVATE]: 'private',
  [MountPropagation.PROPAGATION_HOST_TO_CONTAINER]: 'host-to-container',
  [MountPropagation.PROPAGATION_BIDIRECTIONAL]: 'bidirectional',
};

const STATES: Record<DomainState, ContainerState> = {
  created: ContainerState.CONTAINER_CREATED,
  running: ContainerState.CONTAINER_RUNNING,
  exited: ContainerState.CONTAINER_EXITED,
};

export function containerStateOf(state: DomainState): ContainerState {
  return STATES[state];
}

/** A container as ListContainers shows it. */
export function containerListItem(rec: ContainerRecord): Init<Container> {
  return {
    id: rec.id,
    pod_sandbox_id: rec.sandboxId,
    metadata: { name: rec.spec.name, attempt: rec.spec.attempt },
    image: { image: rec.spec.image },
    image_ref: rec.imageId,
    image_id: rec.imageId,
    state: STATES[containerState(rec)],
    created_at: rec.createdAt,
    labels: rec.spec.labels,
    annotations: rec.spec.annotations,
  };
}

/** A container as ContainerStatus shows it: times only once they happened, the exit code only once exited. */
export function containerStatus(rec: ContainerRecord): Init<ContainerStatus> {
  const state = containerState(rec);
  return {
    id: rec.id,
    metadata: { name: rec.spec.name, attempt: rec.spec.attempt },
    state: STATES[state],
    created_at: rec.createdAt,
    started_at: rec.startedAt ?? 0n,
    finished_at: rec.finishedAt ?? 0n,
    exit_code: state === 'exited' ? (rec.exitCode ?? 0) : 0,
    image: { image: rec.spec.image },
    image_ref: rec.imageId,
    image_id: rec.imageId,
    reason: rec.reason,
    message: rec.message,
    labels: rec.spec.labels,
    annotations: rec.spec.annotations,
    mounts: rec.spec.mounts.map((m) => ({
      container_path: m.containerPath,
      host_path: m.hostPath,
      readonly: m.readonly,
      recursive_read_only: m.recursiveReadOnly,
      propagation: Number(Object.entries(PROPAGATION).find(([, p]) => p === m.propagation)?.[0] ?? 0),
    })),
    log_path: rec.logPath,
  };
}

/** ContainerStatus's verbose info: what a person debugging a node wants to see. */
export function containerInfo(rec: ContainerRecord): string {
  return JSON.stringify(
    { pid: rec.pid, sandboxId: rec.sandboxId, runtimeHandler: rec.runtimeHandler, stopSignal: rec.stopSignal, spec: rec.spec },
    (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v),
  );
}
