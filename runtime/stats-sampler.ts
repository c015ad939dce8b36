import { readFile } from 'node:fs/promises';
import { nowNs } from '../core/clock.js';
import { step } from '../core/tracing.js';
import { cgroupDir } from '../cgroups/cgroup-paths.js';
import { CGROUP_V2, pidsCurrent, readCgroupsStats, type CgroupStats } from '../cgroups/cgroup-stats.js';
import type { DiskUsage } from '../storage/disk-usage.js';
import { containerState, type ContainerRecord } from './container-record.js';

export interface CgroupSample {
  timestamp: bigint;
  cgroup: CgroupStats | undefined;
  /** CPU use since the previous sample of the same container. */
  nanoCores: bigint | undefined;
  /** Tasks in its cgroup (0 when it does not run). */
  processes: bigint;
}

export interface ContainerStatsSample extends CgroupSample {
  writable: DiskUsage;
}

/**
 * Containers' CPU and memory from their cgroup files (nothing is spawned),
 * with CPU rates from the difference to the previous sample, and their
 * writable layers' sizes (`usage`: from cached walks).
 */
export class StatsSampler {
  private readonly lastCpu = new Map<string, { usage: bigint; at: bigint }>();
  /** Where each running container's stats are read (see dirOf). */
  private readonly dirs = new Map<string, string>();
  /**
   * Readings under way: kubelet asks for container and pod stats at the
   * same moment (metrics beside them), and a call that arrives while a
   * container is being read shares that reading instead of another pass.
   */
  private readonly reading = new Map<string, Promise<CgroupSample>>();

  constructor(private readonly usage: (id: string) => Promise<DiskUsage>) {}

  /** Cgroup samples (see sampleCgroups) and writable layer sizes of `recs`. */
  async sampleAll(recs: readonly ContainerRecord[]): Promise<ContainerStatsSample[]> {
    const sizes = step('writable layer sizes', () => Promise.all(recs.map((r) => this.usage(r.id))));
    const [samples, writable] = await Promise.all([this.sampleCgroups(recs), sizes]);
    return samples.map((sample, i) => ({ ...sample, writable: writable[i] as DiskUsage }));
  }

  /**
   * Samples many containers: those not being read already are read
   * together, every cgroup file of all of them in one pass over the thread
   * pool (a node's stats poll reads thousands).
   */
  sampleCgroups(recs: readonly ContainerRecord[]): Promise<CgroupSample[]> {
    const now = nowNs();
    const measured = (rec: ContainerRecord) => containerState(rec) === 'running' && rec.cgroupsPath !== '';
    const stale = recs.filter((rec) => measured(rec) && !this.reading.has(rec.id));
    if (stale.length > 0) {
      const batch = this.read(stale);
      for (const [i, rec] of stale.entries())
        this.reading.set(
          rec.id,
          batch.then((samples) => samples[i] as CgroupSample),
        );
      void batch
        .finally(() => {
          for (const rec of stale) this.reading.delete(rec.id);
        })
        .catch(() => undefined);
    }
    const idle: CgroupSample = { timestamp: now, cgroup: undefined, nanoCores: undefined, processes: 0n };
    return Promise.all(recs.map((rec) => (measured(rec) ? (this.reading.get(rec.id) ?? idle) : idle)));
  }

  private async read(recs: readonly ContainerRecord[]): Promise<CgroupSample[]> {
    const timestamp = nowNs();
    const dirs = await Promise.all(recs.map((rec) => this.dirOf(rec)));
    const [stats, pids] = await step('cgroup files read', () =>
      Promise.all([readCgroupsStats(dirs), pidsCurrent(recs.map((rec) => cgroupDir(rec.cgroupsPath)))]),
    );
    return recs.map((rec, i) => {
      const cg = stats[i];
      let nanoCores: bigint | undefined;
      const prev = this.lastCpu.get(rec.id);
      if (cg && prev && timestamp > prev.at) nanoCores = ((cg.cpuUsageNs - prev.usage) * 1_000_000_000n) / (timestamp - prev.at);
      const sample = { timestamp, cgroup: cg, nanoCores, processes: cg ? (pids[i] ?? 0n) : 0n };
      // A container forgotten (removed) while it was read keeps no entry.
      if (cg && this.reading.has(rec.id)) this.lastCpu.set(rec.id, { usage: cg.cpuUsageNs, at: timestamp });
      return sample;
    });
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
    this.reading.delete(id);
  }
}
