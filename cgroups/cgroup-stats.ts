import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** One line of a pressure file: "some avg10=0.00 avg60=0.00 avg300=0.00 total=0". */
export interface PsiLine {
  avg10: number;
  avg60: number;
  avg300: number;
  /** Microseconds stalled, ever. */
  total: bigint;
}

export interface Pressure {
  some?: PsiLine;
  full?: PsiLine;
}

export interface CgroupStats {
  cpuUsageNs: bigint;
  memoryUsage: bigint;
  workingSet: bigint;
  rss: bigint;
  pageFaults: bigint;
  majorPageFaults: bigint;
  /** The memory limit; undefined when unlimited. */
  memoryLimit: bigint | undefined;
  /** Swap in use and its limit; undefined where the host does not account swap. */
  swapUsage: bigint | undefined;
  swapLimit: bigint | undefined;
  /** Processes the kernel's OOM killer ended in this cgroup, ever. */
  oomKills: bigint;
  /** Pressure stall information (cgroup v2 with PSI in the kernel). */
  psi: { cpu?: Pressure; memory?: Pressure; io?: Pressure };
}

/** Where the cgroup hierarchies are mounted. */
export const CGROUP_ROOT = '/sys/fs/cgroup';
const ROOT = CGROUP_ROOT;
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

/** A limit file's value; "max" (v2) and v1's page-rounded "unlimited" (>= 2^62) are no limit. */
function limit(text: string | undefined): bigint | undefined {
  const t = text?.trim();
  if (t === undefined || !/^\d+$/.test(t)) return undefined;
  const v = BigInt(t);
  return v >= 1n << 62n ? undefined : v;
}

function counter(text: string | undefined): bigint | undefined {
  const t = text?.trim();
  return t !== undefined && /^\d+$/.test(t) ? BigInt(t) : undefined;
}

export function parsePressure(text: string | undefined): Pressure | undefined {
  if (text === undefined) return undefined;
  const out: Pressure = {};
  for (const line of text.split('\n')) {
    const m = /^(some|full) avg10=([\d.]+) avg60=([\d.]+) avg300=([\d.]+) total=(\d+)$/.exec(line.trim());
    if (m) out[m[1] as 'some' | 'full'] = { avg10: Number(m[2]), avg60: Number(m[3]), avg300: Number(m[4]), total: BigInt(m[5] as string) };
  }
  return out.some || out.full ? out : undefined;
}

/**
 * CPU, memory, swap and pressure of a cgroup from its files (v1 or v2);
 * undefined once it is gone. `dir` is below the hierarchies' root.
 */
export async function readCgroupStats(dir: string, root = ROOT, v2 = CGROUP_V2): Promise<CgroupStats | undefined> {
  if (v2) {
    const at = (f: string) => read(join(root, dir, f));
    const [cpu, current, stat, max, swap, swapMax, cpuPsi, memPsi, ioPsi, events] = await Promise.all(
      [
        'cpu.stat',
        'memory.current',
        'memory.stat',
        'memory.max',
        'memory.swap.current',
        'memory.swap.max',
        'cpu.pressure',
        'memory.pressure',
        'io.pressure',
        'memory.events',
      ].map(at),
    );
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
      memoryLimit: limit(max),
      swapUsage: counter(swap),
      swapLimit: limit(swapMax),
      oomKills: keyed(events).get('oom_kill') ?? 0n,
      psi: { cpu: parsePressure(cpuPsi), memory: parsePressure(memPsi), io: parsePressure(ioPsi) },
    };
  }
  const mem = (f: string) => read(join(root, 'memory', dir, f));
  const [cpu, usageText, stat, limitText, memswUsage, memswLimit, oomControl] = await Promise.all([
    read(join(root, 'cpuacct', dir, 'cpuacct.usage')),
    mem('memory.usage_in_bytes'),
    mem('memory.stat'),
    mem('memory.limit_in_bytes'),
    mem('memory.memsw.usage_in_bytes'),
    mem('memory.memsw.limit_in_bytes'),
    mem('memory.oom_control'),
  ]);
  if (cpu === undefined || usageText === undefined) return undefined;
  const m = keyed(stat);
  const usage = BigInt(usageText.trim());
  const inactive = m.get('total_inactive_file') ?? 0n;
  const memLimit = limit(limitText);
  // v1 accounts memory+swap together: swap is the difference.
  const memsw = counter(memswUsage);
  const memswMax = limit(memswLimit);
  return {
    cpuUsageNs: BigInt(cpu.trim()),
    memoryUsage: usage,
    workingSet: usage > inactive ? usage - inactive : 0n,
    rss: m.get('total_rss') ?? 0n,
    pageFaults: m.get('total_pgfault') ?? 0n,
    majorPageFaults: m.get('total_pgmajfault') ?? 0n,
    memoryLimit: memLimit,
    swapUsage: memsw === undefined ? undefined : memsw > usage ? memsw - usage : 0n,
    swapLimit: memswMax !== undefined && memLimit !== undefined && memswMax >= memLimit ? memswMax - memLimit : undefined,
    oomKills: keyed(oomControl).get('oom_kill') ?? 0n,
    psi: {},
  };
}

/** Tasks in a cgroup (pids controller), 0 when it is gone. */
export async function pidsCurrent(cgroupsPath: string): Promise<bigint> {
  const text = await read(CGROUP_V2 ? join(ROOT, cgroupsPath, 'pids.current') : join(ROOT, 'pids', cgroupsPath, 'pids.current'));
  return text === undefined ? 0n : BigInt(text.trim() || '0');
}
