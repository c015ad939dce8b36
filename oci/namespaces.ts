/** Where a pod's namespace comes from: its own (pod), each container's own, the host's, or another container's. */
export type NamespaceMode = 'pod' | 'container' | 'node' | 'target';

/** Namespace files a container joins (a pod's pins); a kind left out is the host's. */
export type NamespacePaths = Partial<Record<'net' | 'ipc' | 'uts' | 'pid', string>>;
