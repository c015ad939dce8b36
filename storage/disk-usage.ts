import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface DiskUsage {
  bytes: number;
  inodes: number;
}

/** Bytes and inodes under `dir` (a container's writable layer), without following links. */
export async function diskUsage(dir: string): Promise<DiskUsage> {
  let bytes = 0;
  let inodes = 0;
  const walk = async (d: string): Promise<void> => {
    let names: string[];
    try {
      names = await readdir(d);
    } catch {
      return;
    }
    for (const name of names) {
      const p = join(d, name);
      try {
        const st = await lstat(p);
        inodes++;
        bytes += st.blocks * 512;
        if (st.isDirectory()) await walk(p);
      } catch {
        // removed meanwhile
      }
    }
  };
  await walk(dir);
  return { bytes, inodes };
}
