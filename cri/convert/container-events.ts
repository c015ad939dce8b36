import { type ContainerRecord, containerState } from '../../runtime/container-record.js';
import { isReady, type SandboxRecord } from '../../sandbox/sandbox-spec.js';
import { ContainerEventType } from '../generated/api.js';

const {
  CONTAINER_CREATED_EVENT: CREATED,
  CONTAINER_STARTED_EVENT: STARTED,
  CONTAINER_STOPPED_EVENT: STOPPED,
  CONTAINER_DELETED_EVENT: DELETED,
} = ContainerEventType;

/**
 * The events one change of a container's record means, in order. A record
 * that first shows up already started (or exited) gives each step it skipped.
 */
export function containerEventTypes(before: ContainerRecord | undefined, after: ContainerRecord | undefined): ContainerEventType[] {
  if (!after) return before ? [DELETED] : [];
  const events: ContainerEventType[] = before ? [] : [CREATED];
  const from = before ? containerState(before) : 'created';
  const to = containerState(after);
  if (from === 'created' && to !== 'created' && after.startedAt !== undefined) events.push(STARTED);
  if (from !== 'exited' && to === 'exited') events.push(STOPPED);
  return events;
}

/**
 * The events one change of a pod's record means, as containerd and CRI-O
 * send them for a sandbox (its id as the container id): created and
 * started when it is first ready, stopped when it stops being ready,
 * deleted when it is removed.
 */
export function podEventTypes(before: SandboxRecord | undefined, after: SandboxRecord | undefined): ContainerEventType[] {
  if (!after) return before ? [DELETED] : [];
  const wasReady = before !== undefined && isReady(before);
  const ready = isReady(after);
  if (!before) return ready ? [CREATED, STARTED] : [CREATED];
  if (wasReady && !ready) return [STOPPED];
  return [];
}
