import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface CgroupStats {
  cpuUsageNs: bigint;
  memoryUsage: bigint;
  workingSet: bigint;
  rss: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
}

const ROOT = '/sys/fs/cgroup';
/** Pure cgroup v2 has cgroup.controllers at the root; hybrid and v1 hosts do not. */
export const CGROUP_V2 = existsSync(join(ROOT, 'cgroup.controllers'));

async function read(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

function keyed(text: string | undefined): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const line of (text ?? '').split('\n')) {
    const [k, v] = line.split(' ');
    if (k && v && /^\d+$/.test(v)) out.set(k, BigInt(v));
  }
  return out;
}

/** CPU and memory of a cgroupfs cgroup from its files (v1 or v2); undefined once it is gone. */
export async function readCgroupStats(cgroupsPath: string): Promise<CgroupStats | undefined> {
  if (CGROUP_V2) {
    const dir = join(ROOT, cgroupsPath);
    const [cpu, current, stat] = await Promise.all([read(join(dir, 'cpu.stat')), read(join(dir, 'memory.current')), read(join(dir, 'memory.stat'))]);
    if (cpu === undefined || current === undefined) return undefined;
    const m = keyed(stat);
    const usage = BigInt(current.trim());
    const inactive = m.get('inactive_file') ?? 0n;
    return {
      cpuUsageNs: (keyed(cpu).get('usage_usec') ?? 0n) * 1000n,
      memoryUsage: usage,
      workingSet: usage > inactive ? usage - inactive : 0n,
      rss: m.get('anon') ?? 0n,
      pageFaults: m.get('pgfault') ?? 0n,
      majorPageFaults: m.get('pgmajfault') ?? 0n,
    };
  }
  const [cpu, usageText, stat] = await Promise.all([
    read(join(ROOT, 'cpuacct', cgroupsPath, 'cpuacct.usage')),
    read(join(ROOT, 'memory', cgroupsPath, 'memory.usage_in_bytes')),
    read(join(ROOT, 'memory', cgroupsPath, 'memory.stat')),
  ]);
  if (cpu === undefined || usageText === undefined) return undefined;
  const m = keyed(stat);
  const usage = BigInt(usageText.trim());
  const inactive = m.get('total_inactive_file') ?? 0n;
  return {
    cpuUsageNs: BigInt(cpu.trim()),
    memoryUsage: usage,
    workingSet: usage > inactive ? usage - inactive : 0n,
    rss: m.get('total_rss') ?? 0n,
    pageFaults: m.get('total_pgfault') ?? 0n,
    majorPageFaults: m.get('total_pgmajfault') ?? 0n,
  };
}

/** Bytes and inodes under `dir` (a container's writable layer), without following links. */
export async function diskUsage(dir: string): Promise<{ bytes: number; inodes: number }> {
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

/**
 * Removes a container's cgroup in every hierarchy where it is still there
 * and empty: the OCI runtime removes it on delete, but not when it no longer
 * knows the container (its state dir was emptied by a reboot).
 */
export async function removeCgroup(cgroupsPath: string): Promise<void> {
  const dirs = CGROUP_V2 ? [join(ROOT, cgroupsPath)] : (await readdir(ROOT).catch(() => [] as string[])).map((c) => join(ROOT, c, cgroupsPath));
  for (const dir of dirs) {
    try {
      await rmdir(dir);
    } catch {
      // gone already, not a hierarchy, or still in use
    }
  }
}

/** Tasks in a cgroup (pids controller), 0 when it is gone. */
export async function pidsCurrent(cgroupsPath: string): Promise<bigint> {
  const text = await read(CGROUP_V2 ? join(ROOT, cgroupsPath, 'pids.current') : join(ROOT, 'pids', cgroupsPath, 'pids.current'));
  return text === undefined ? 0n : BigInt(text.trim() || '0');
}
