import type { ContainerFilter } from '../../runtime/container-record.js';
import type { SandboxFilter } from '../../sandbox/sandbox-manager.js';
import {
  PodSandboxState,
  type ContainerFilter as CriContainerFilter,
  type ContainerStatsFilter,
  type PodSandboxFilter,
  type PodSandboxStatsFilter,
} from '../generated/api.js';
import { containerStateOf } from './container-status.js';

/** A label selector as the domain takes it: undefined when it selects nothing in particular. */
export function labelSelector(selector: Readonly<Record<string, string>> | undefined): Readonly<Record<string, string>> | undefined {
  return selector && Object.keys(selector).length > 0 ? selector : undefined;
}

export function podFilter(filter: PodSandboxFilter | PodSandboxStatsFilter | undefined): SandboxFilter {
  if (!filter) return {};
  const state = 'state' in filter && filter.state ? (filter.state.state === PodSandboxState.SANDBOX_READY ? 'ready' : 'notready') : undefined;
  return { id: filter.id || undefined, state, labels: labelSelector(filter.label_selector) };
}

/** The domain filter; undefined when nothing can match (a state Cradle never reports, such as UNKNOWN). */
export function containerFilter(filter: CriContainerFilter | ContainerStatsFilter | undefined): ContainerFilter | undefined {
  if (!filter) return {};
  let state: ContainerFilter['state'];
  if ('state' in filter && filter.state) {
    state = (['created', 'running', 'exited'] as const).find((s) => containerStateOf(s) === filter.state?.state);
    if (state === undefined) return undefined;
  }
  return { id: filter.id || undefined, sandboxId: filter.pod_sandbox_id || undefined, state, labels: labelSelector(filter.label_selector) };
}
