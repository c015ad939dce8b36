import { readFileSync } from 'node:fs';

/**
 * The lowest oom_score_adj this process may give a container: its own, when
 * it lacks CAP_SYS_RESOURCE (bit 24), as in nested setups; undefined when it
 * may set any.
 */
export function ownOomScoreAdjFloor(): number | undefined {
  const status = readFileSync('/proc/self/status', 'utf8');
  const eff = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1] ?? 'ffffffffff';
  if ((BigInt(`0x${eff}`) >> 24n) & 1n) return undefined;
  return Number(readFileSync('/proc/self/oom_score_adj', 'utf8').trim());
}
