import { readFileSync } from 'node:fs';

/** What a process uses, from /proc: the benchmarks' shared readings. */

/** Proportional set size in MiB (shared pages split among their users); 0 once the process is gone. */
export function pssMiB(pid: number): number {
  try {
    return Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))?.[1] ?? 0) / 1024;
  } catch {
    return 0;
  }
}

/**
 * CPU seconds the process has used so far, all its threads, user and
 * system; with `children`, also those of its children it has waited for
 * (a decompressor it ran, say).
 */
export function cpuSeconds(pid: number, children = false): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .map(Number);
  // Fields 14-17 of stat (12-15 after the command): utime, stime, cutime, cstime, in ticks of 1/100 s (USER_HZ).
  const ticks = (i: number) => fields[i] ?? 0;
  return (ticks(11) + ticks(12) + (children ? ticks(13) + ticks(14) : 0)) / 100;
}
