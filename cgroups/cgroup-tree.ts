import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CGROUP_ROOT, CGROUP_V2 } from './cgroup-stats.js';

/**
 * cgroups as directories (the cgroupfs driver's view): made, joined,
 * emptied and removed in every hierarchy at once.
 */

/** The mounted hierarchies: the one root on cgroup v2, one per controller (and named ones) on v1. */
async function hierarchies(): Promise<string[]> {
  if (CGROUP_V2) return [CGROUP_ROOT];
  const names = await readdir(CGROUP_ROOT, { withFileTypes: true }).catch(() => []);
  return names.filter((e) => e.isDirectory()).map((e) => join(CGROUP_ROOT, e.name));
}

/** A cgroup's directory in every hierarchy. */
async function hierarchyDirs(dir: string): Promise<string[]> {
  return (await hierarchies()).map((h) => join(h, dir));
}

/**
 * Removes a container's cgroup (`dir` below the hierarchy root) in every
 * hierarchy where it is still there and empty: the OCI runtime removes it
 * on delete, but not when it no longer knows the container (its state dir
 * was emptied by a reboot, or a crash cut its create short).
 */
export async function removeCgroup(dir: string): Promise<void> {
  for (const d of await hierarchyDirs(dir)) {
    try {
      await rmdir(d);
    } catch {
      // gone already, not a hierarchy, or still in use
    }
  }
}

/**
 * SIGKILLs every process in a container's cgroup (a `runc init` a crashed
 * create left waiting, or a container whose monitor is gone). Returns how
 * many were signalled.
 */
export async function killCgroupProcesses(dir: string): Promise<number> {
  const pids = new Set<number>();
  for (const d of await hierarchyDirs(dir)) {
    const text = await readFile(join(d, 'cgroup.procs'), 'utf8').catch(() => '');
    for (const line of text.split('\n')) if (/^\d+$/.test(line)) pids.add(Number(line));
  }
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // exited meanwhile
    }
  }
  return pids.size;
}

/**
 * Moves `pid` into the cgroup `dir` (below the hierarchy root) in every
 * hierarchy, making the levels that are missing. A new cpuset level on v1
 * starts with no CPUs and takes no process, so it gets its parent's.
 */
export async function placeInCgroup(pid: number, dir: string): Promise<void> {
  for (const h of await hierarchies()) {
    let current = h;
    for (const part of dir.split('/').filter((p) => p !== '')) {
      const next = join(current, part);
      if (!existsSync(next)) {
        await mkdir(next).catch((err: unknown) => {
          if ((err as { code?: string }).code !== 'EEXIST') throw err;
        });
      }
      // A v1 cpuset starts empty, and a task cannot join it then (ENOSPC). Checked even when the
      // directory was there: a concurrent start may have made it and not yet filled it in.
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (CGROUP_V2 || !existsSync(join(current, file))) continue;
        if ((await readFile(join(next, file), 'utf8')).trim() === '') await writeFile(join(next, file), await readFile(join(current, file), 'utf8'));
      }
      current = next;
    }
    await writeFile(join(current, 'cgroup.procs'), String(pid));
  }
}
