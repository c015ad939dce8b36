import type { PodLimits } from '../cgroups/pod-limits.js';
import type { VersionedRecord } from '../core/record-store.js';
import type { DnsConfig, PortMapping } from '../network/pod-network.js';
import type { NamespaceMode, UserNamespace } from '../oci/namespaces.js';
import type { Pins } from './namespace-pins.js';

/** What a pod asks for: the CRI PodSandboxConfig in domain terms. */
export interface SandboxSpec {
  name: string;
  namespace: string;
  uid: string;
  attempt: number;
  hostname: string;
  logDirectory: string;
  dns: DnsConfig | undefined;
  portMappings: PortMapping[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  runtimeHandler: string;
  cgroupParent: string;
  namespaces: { network: NamespaceMode; pid: NamespaceMode; ipc: NamespaceMode; targetId: string };
  /** A user namespace of the pod's own (userns mode POD), with kubelet's id maps; none: the host's. */
  userns?: UserNamespace;
  sysctls: Record<string, string>;
}

export type SandboxState = 'ready' | 'notready';

export interface SandboxRecord extends VersionedRecord {
  schema: 1;
  spec: SandboxSpec;
  /** Unix nanoseconds. */
  createdAt: bigint;
  state: SandboxState;
  /** Bind-mounted namespace files; empty once stopped. */
  pins: Pins;
  /** PID 1 of the pod's PID namespace (pid mode POD), while it runs. */
  initPid: number | undefined;
  /** Pod IPs from CNI, IPv4 first. */
  ips: string[];
  /** CNI ADD done and not yet undone by DEL. */
  networkAttached: boolean;
  /** The pod's /dev/shm tmpfs, while mounted. */
  shmMounted: boolean;
  /**
   * A request under way, recorded before its first step: a crash leaves
   * it here for recovery to finish (stopping, removing) or undo (creating).
   */
  phase?: 'creating' | 'stopping' | 'removing';
  /** Made by RestorePod and not yet holding all its containers: start-up removes it with what it has. */
  restoring?: true;
  /** The limits UpdatePodSandboxResources last set on the pod's cgroup. */
  resources?: PodLimits;
}

/** The name kubelet's metadata reserves: `name_namespace_uid_attempt`. */
export function sandboxName(spec: Pick<SandboxSpec, 'name' | 'namespace' | 'uid' | 'attempt'>): string {
  return `${spec.name}_${spec.namespace}_${spec.uid}_${spec.attempt}`;
}

/** READY to kubelet: namespaces up and no stop or removal under way. */
export function isReady(rec: Pick<SandboxRecord, 'state' | 'phase'>): boolean {
  return rec.state === 'ready' && rec.phase === undefined;
}
