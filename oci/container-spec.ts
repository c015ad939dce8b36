import type { ContainerResources } from '../cgroups/resource-limits.js';
import type { NamespaceMode } from './namespaces.js';
import type { AppArmorChoice, SelinuxOptions } from './lsm.js';
import type { SeccompChoice } from './seccomp.js';

export type Propagation = 'private' | 'host-to-container' | 'bidirectional';

export interface MountSpec {
  containerPath: string;
  hostPath: string;
  readonly: boolean;
  /** Read-only all the way down, submounts included (mount_setattr). */
  recursiveReadOnly: boolean;
  propagation: Propagation;
  /** Give the host path the container's SELinux mount label first (where SELinux is on). */
  selinuxRelabel: boolean;
}

export interface DeviceSpec {
  containerPath: string;
  hostPath: string;
  /** cgroup access: any of r, w, m */
  permissions: string;
}

/** A device node resolved on the host. */
export interface HostDevice {
  containerPath: string;
  type: 'c' | 'b';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
  permissions: string;
}

/** What a container asks for: the CRI ContainerConfig in domain terms. */
export interface ContainerSpec {
  name: string;
  attempt: number;
  image: string;
  command: string[];
  args: string[];
  workingDir: string;
  envs: Array<[string, string]>;
  mounts: MountSpec[];
  devices: DeviceSpec[];
  labels: Record<string, string>;
  annotations: Record<string, string>;
  /** Relative to the pod's log directory. */
  logPath: string;
  stdin: boolean;
  /** Close the container's stdin when the first attach session ends. */
  stdinOnce: boolean;
  tty: boolean;
  resources: ContainerResources;
  security: {
    privileged: boolean;
    capabilitiesAdd: string[];
    capabilitiesDrop: string[];
    runAsUser: bigint | undefined;
    runAsGroup: bigint | undefined;
    runAsUsername: string;
    supplementalGroups: bigint[];
    /** Merge: the image's /etc/group memberships of the user are added; Strict: only the groups kubelet gives. */
    supplementalGroupsPolicy: 'merge' | 'strict';
    readonlyRootfs: boolean;
    noNewPrivs: boolean;
    maskedPaths: string[];
    readonlyPaths: string[];
    pidMode: NamespaceMode;
    /** For pidMode 'target': the container whose PID namespace to join. */
    targetId: string;
    seccomp: SeccompChoice;
    appArmor: AppArmorChoice;
    selinux: SelinuxOptions | undefined;
  };
  /** e.g. SIGTERM; empty: the image's StopSignal, else SIGTERM. */
  stopSignal: string;
}
