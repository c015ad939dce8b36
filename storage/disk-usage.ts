import { loadNative } from '../native/index.js';

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

/** Bytes and inodes under `dir` (a container's writable layer), without following links: one walk on the thread pool. */
export function diskUsage(dir: string): Promise<DiskUsage> {
  return loadNative().diskUsage(dir);
}
