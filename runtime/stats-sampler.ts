import { readFile } from 'node:fs/promises';
import { nowNs } from '../core/clock.js';
import { cgroupDir } from '../cgroups/cgroup-paths.js';
import { CGROUP_V2, pidsCurrent, readCgroupStats, type CgroupStats } from '../cgroups/cgroup-stats.js';
import { containerState, type ContainerRecord } from './container-record.js';

export interface CgroupSample {
  timestamp: bigint;
  cgroup: CgroupStats | undefined;
  /** CPU use since the previous sample of the same container. */
  nanoCores: bigint | undefined;
}

/**
 * Containers' CPU and memory from their cgroup files (nothing is spawned),
 * with CPU rates from the difference to the previous sample.
 */
export class StatsSampler {
  private readonly lastCpu = new Map<string, { usage: bigint; at: bigint }>();
  /** Where each running container's stats are read (see dirOf). */
  private readonly dirs = new Map<string, string>();

  async sample(rec: ContainerRecord): Promise<CgroupSample> {
    const timestamp = nowNs();
    const cg = containerState(rec) === 'running' && rec.cgroupsPath ? await readCgroupStats(await this.dirOf(rec)) : undefined;
    let nanoCores: bigint | undefined;
    const prev = this.lastCpu.get(rec.id);
    if (cg && prev && timestamp > prev.at) nanoCores = ((cg.cpuUsageNs - prev.usage) * 1_000_000_000n) / (timestamp - prev.at);
    if (cg) this.lastCpu.set(rec.id, { usage: cg.cpuUsageNs, at: timestamp });
    return { timestamp, cgroup: cg, nanoCores };
  }

  async processCount(rec: ContainerRecord): Promise<bigint> {
    return containerState(rec) === 'running' && rec.cgroupsPath ? pidsCurrent(cgroupDir(rec.cgroupsPath)) : 0n;
  }

  /**
   * The cgroup a container's process is in, when that is inside its own
   * cgroup: crun (systemd driver, cgroup v2) runs it in a `container` child
   * of the scope and sets the limits there, so the scope alone would show
   * usage without the limit. Learnt once per container from /proc.
   */
  async dirOf(rec: ContainerRecord): Promise<string> {
    const own = cgroupDir(rec.cgroupsPath);
    const known = this.dirs.get(rec.id);
    if (known !== undefined || !CGROUP_V2 || rec.pid === undefined) return known ?? own;
    const line = (await readFile(`/proc/${rec.pid}/cgroup`, 'utf8').catch(() => '')).split('\n').find((l) => l.startsWith('0::'));
    const dir = line?.slice(3).startsWith(`${own}/`) ? line.slice(3) : own;
    this.dirs.set(rec.id, dir);
    return dir;
  }

  forget(id: string): void {
    this.lastCpu.delete(id);
    this.dirs.delete(id);
  }
}
