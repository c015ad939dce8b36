/** Where a pod's namespace comes from: its own (pod), each container's own, the host's, or another container's. */
export type NamespaceMode = 'pod' | 'container' | 'node' | 'target';

/** Namespace files a container joins (a pod's pins); a kind left out is the host's. */
export type NamespacePaths = Partial<Record<'net' | 'ipc' | 'uts' | 'pid' | 'user', string>>;

/** One range of a user namespace's id map: `length` ids from `containerId` inside are `hostId`... outside. */
export interface IdMapping {
  containerId: number;
  hostId: number;
  length: number;
}

/** A pod's user namespace: its uid and gid maps (kubelet sends one range each). */
export interface UserNamespace {
  uids: IdMapping[];
  gids: IdMapping[];
}

/** The /proc/PID/uid_map text of a mapping list. */
export function idMapText(mappings: readonly IdMapping[]): string {
  return mappings.map((m) => `${m.containerId} ${m.hostId} ${m.length}\n`).join('');
}

/** The host id the namespace's root (id 0 inside) maps to. */
export function hostRootId(mappings: readonly IdMapping[]): number | undefined {
  return mappings.find((m) => m.containerId === 0)?.hostId;
}
