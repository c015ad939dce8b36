import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readSmallFiles } from '../native/small-files.js';

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

/**
 * The value of `key` in a flat-keyed file ("key value" lines: memory.stat,
 * cpu.stat, ...). Found by search rather than by parsing every line: a
 * node's stats read thousands of these files, of which a few keys matter.
 */
function field(text: string | undefined, key: string): bigint | undefined {
  if (text === undefined) return undefined;
  let at = text.startsWith(`${key} `) ? 0 : text.indexOf(`\n${key} `);
  if (at < 0) return undefined;
  if (at > 0) at++;
  const start = at + key.length + 1;
  let end = text.indexOf('\n', start);
  if (end < 0) end = text.length;
  const v = text.slice(start, end).trim();
  return /^\d+$/.test(v) ? BigInt(v) : undefined;
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

const V2_FILES = [
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
];

const V1_MEMORY_FILES = [
  'memory.usage_in_bytes',
  'memory.stat',
  'memory.limit_in_bytes',
  'memory.memsw.usage_in_bytes',
  'memory.memsw.limit_in_bytes',
  'memory.oom_control',
];

/**
 * The files a cgroup's stats come from, in the order parseV1 and parseV2 take
 * their texts. One join per directory: a poll of 250 containers builds
 * 2,000 of these, and join's normalising cost 7 ms of it.
 */
function statPaths(dir: string, root: string, v2: boolean): string[] {
  if (v2) {
    const base = join(root, dir);
    return V2_FILES.map((f) => `${base}/${f}`);
  }
  const mem = join(root, 'memory', dir);
  return [`${join(root, 'cpuacct', dir)}/cpuacct.usage`, ...V1_MEMORY_FILES.map((f) => `${mem}/${f}`)];
}

function parseV2(texts: readonly (string | undefined)[]): CgroupStats | undefined {
  const [cpu, current, stat, max, swap, swapMax, cpuPsi, memPsi, ioPsi, events] = texts;
  if (cpu === undefined || current === undefined) return undefined;
  const m = (key: string) => field(stat, key);
  const usage = BigInt(current.trim());
  const inactive = m('inactive_file') ?? 0n;
  return {
    cpuUsageNs: (field(cpu, 'usage_usec') ?? 0n) * 1000n,
    memoryUsage: usage,
    workingSet: usage > inactive ? usage - inactive : 0n,
    rss: m('anon') ?? 0n,
    pageFaults: m('pgfault') ?? 0n,
    majorPageFaults: m('pgmajfault') ?? 0n,
    memoryLimit: limit(max),
    swapUsage: counter(swap),
    swapLimit: limit(swapMax),
    oomKills: field(events, 'oom_kill') ?? 0n,
    psi: { cpu: parsePressure(cpuPsi), memory: parsePressure(memPsi), io: parsePressure(ioPsi) },
  };
}

function parseV1(texts: readonly (string | undefined)[]): CgroupStats | undefined {
  const [cpu, usageText, stat, limitText, memswUsage, memswLimit, oomControl] = texts;
  if (cpu === undefined || usageText === undefined) return undefined;
  const m = (key: string) => field(stat, key);
  const usage = BigInt(usageText.trim());
  const inactive = m('total_inactive_file') ?? 0n;
  const memLimit = limit(limitText);
  // v1 accounts memory+swap together: swap is the difference.
  const memsw = counter(memswUsage);
  const memswMax = limit(memswLimit);
  return {
    cpuUsageNs: BigInt(cpu.trim()),
    memoryUsage: usage,
    workingSet: usage > inactive ? usage - inactive : 0n,
    rss: m('total_rss') ?? 0n,
    pageFaults: m('total_pgfault') ?? 0n,
    majorPageFaults: m('total_pgmajfault') ?? 0n,
    memoryLimit: memLimit,
    swapUsage: memsw === undefined ? undefined : memsw > usage ? memsw - usage : 0n,
    swapLimit: memswMax !== undefined && memLimit !== undefined && memswMax >= memLimit ? memswMax - memLimit : undefined,
    oomKills: field(oomControl, 'oom_kill') ?? 0n,
    psi: {},
  };
}

/**
 * CPU, memory, swap and pressure of many cgroups from their files (v1 or
 * v2), all read in one trip to the thread pool; undefined for one that is
 * gone. Each dir is below the hierarchies' root.
 */
export async function readCgroupsStats(dirs: readonly string[], root = ROOT, v2 = CGROUP_V2): Promise<(CgroupStats | undefined)[]> {
  const per = statPaths('/', root, v2).length;
  const texts = await readSmallFiles(dirs.flatMap((d) => statPaths(d, root, v2)));
  return dirs.map((_, i) => (v2 ? parseV2 : parseV1)(texts.slice(i * per, (i + 1) * per)));
}

/** Tasks in each cgroup (pids controller), in one trip; 0 for one that is gone. */
export async function pidsCurrent(cgroupsPaths: readonly string[]): Promise<bigint[]> {
  const texts = await readSmallFiles(cgroupsPaths.map((p) => (CGROUP_V2 ? join(ROOT, p, 'pids.current') : join(ROOT, 'pids', p, 'pids.current'))));
  return texts.map((text) => (text === undefined ? 0n : BigInt(text.trim() || '0')));
}
