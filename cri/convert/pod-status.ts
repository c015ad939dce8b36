import type { SandboxManager } from '../../sandbox/sandbox-manager.js';
import { isReady, type SandboxRecord } from '../../sandbox/sandbox-spec.js';
import { PodSandboxState, type PodSandbox, type PodSandboxStatus } from '../generated/api.js';
import type { Init } from '../service-types.js';
import { toCriMode } from './pod-config.js';
import { toCriUserNamespace } from './user-namespace.js';

export function podState(rec: SandboxRecord): PodSandboxState {
  return isReady(rec) ? PodSandboxState.SANDBOX_READY : PodSandboxState.SANDBOX_NOTREADY;
}

export function podMetadata(rec: SandboxRecord) {
  return { name: rec.spec.name, uid: rec.spec.uid, namespace: rec.spec.namespace, attempt: rec.spec.attempt };
}

export function podListItem(rec: SandboxRecord): Init<PodSandbox> {
  return {
    id: rec.id,
    metadata: podMetadata(rec),
    state: podState(rec),
    created_at: rec.createdAt,
    labels: rec.spec.labels,
    annotations: rec.spec.annotations,
    runtime_handler: rec.spec.runtimeHandler,
  };
}

/** PodSandboxStatus's verbose info. */
export function podInfo(rec: SandboxRecord, sandboxes: SandboxManager): string {
  return JSON.stringify(
    {
      id: rec.id,
      createdAt: rec.createdAt.toString(),
      state: rec.state,
      namespaces: rec.pins,
      initPid: rec.initPid,
      ips: rec.ips,
      networkAttached: rec.networkAttached,
      resources: rec.resources,
      shm: rec.shmMounted ? sandboxes.shmPath(rec.id) : '',
      files: {
        hostname: sandboxes.podFile(rec.id, 'hostname'),
        hosts: sandboxes.podFile(rec.id, 'hosts'),
        resolvConf: sandboxes.podFile(rec.id, 'resolv.conf'),
      },
      config: rec.spec,
    },
    null,
    0,
  );
}

/** A pod as PodSandboxStatus shows it. */
export function podStatus(rec: SandboxRecord): Init<PodSandboxStatus> {
  const [ip = '', ...more] = rec.ips;
  return {
    id: rec.id,
    metadata: podMetadata(rec),
    state: podState(rec),
    created_at: rec.createdAt,
    network: { ip, additional_ips: more.map((a) => ({ ip: a })) },
    linux: {
      namespaces: {
        options: {
          network: toCriMode(rec.spec.namespaces.network),
          pid: toCriMode(rec.spec.namespaces.pid),
          ipc: toCriMode(rec.spec.namespaces.ipc),
          target_id: rec.spec.namespaces.targetId,
          userns_options: toCriUserNamespace(rec.spec.userns),
        },
      },
    },
    labels: rec.spec.labels,
    annotations: rec.spec.annotations,
    runtime_handler: rec.spec.runtimeHandler,
  };
}
