import type { PodSandboxConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import type { TestNode } from './test-node.js';

let counter = 0;

/** A PodSandboxConfig as kubelet would send it, with a fresh uid. */
export function podConfig(name: string, extra: Init<PodSandboxConfig> = {}): Init<PodSandboxConfig> {
  counter++;
  return {
    metadata: { name, namespace: 'default', uid: `uid-${name}-${process.pid}-${counter}`, attempt: 0 },
    hostname: name,
    log_directory: `/var/log/pods/default_${name}`,
    labels: { app: name },
    ...extra,
  };
}

export interface PodInfo {
  namespaces: { net?: string; ipc?: string; uts?: string; pid?: string; user?: string };
  initPid?: number;
  ips: string[];
  shm: string;
  files: { hostname: string; hosts: string; resolvConf: string };
}

/** The verbose status info of a pod: where its namespaces and files are. */
export async function podInfo(node: TestNode, id: string): Promise<PodInfo> {
  const s = await node.client().runtime.call('PodSandboxStatus', { pod_sandbox_id: id, verbose: true });
  return JSON.parse(s.info.info ?? '{}') as PodInfo;
}

/** Runs a command in the node with the given namespace files entered. */
export function inPod(node: TestNode, ns: { net?: string; uts?: string; ipc?: string }, command: string[], options: { timeoutMs?: number } = {}) {
  const flags = Object.entries(ns).map(([kind, path]) => `--${kind}=${path}`);
  return node.exec('nsenter', [...flags, '--', ...command], options);
}
