import type { CriClient } from '../../cri/client.js';
import type { StepWindow } from '../../core/tracing.js';
import { summarize } from './stats.js';

/** One traced step of an RPC: its path ("CreateContainer / rootfs mounted"), median per call and how many calls had it. */
export interface BreakdownRow {
  path: string;
  p50: number;
  calls: number;
}

type Steps = Record<string, StepWindow>;

/**
 * The daemon's own step durations (verbose Status, `steps`), read before
 * and after a run: a step's samples of the run are the newest `after -
 * before` of its window. Undefined when the endpoint does not report steps
 * (another runtime, an older Cradle).
 */
export async function stepSnapshot(client: CriClient): Promise<Steps | undefined> {
  const res = await client.runtime.call('Status', { verbose: true }, { timeoutMs: 30_000 });
  const raw = res.info.steps;
  return raw === undefined ? undefined : (JSON.parse(raw) as Steps);
}

/** The steps of `rpcs` run between the two snapshots, parents before children, in the order the daemon first saw them. */
export function breakdown(before: Steps, after: Steps, rpcs: readonly string[]): BreakdownRow[] {
  const rows: BreakdownRow[] = [];
  // Children right under their parent: each path sorts by the first-seen order of its ancestors, then its own.
  const seen = new Map(Object.keys(after).map((p, i) => [p, i]));
  const key = (path: string) => path.split(' / ').map((_, i, parts) => seen.get(parts.slice(0, i + 1).join(' / ')) ?? 0);
  const byTree = (a: BreakdownRow, b: BreakdownRow) => {
    const [ka, kb] = [key(a.path), key(b.path)];
    for (let i = 0; i < Math.min(ka.length, kb.length); i++) if (ka[i] !== kb[i]) return (ka[i] as number) - (kb[i] as number);
    return ka.length - kb.length;
  };
  for (const rpc of rpcs) {
    for (const [path, w] of Object.entries(after)) {
      if (path !== rpc && !path.startsWith(`${rpc} / `)) continue;
      const calls = w.count - (before[path]?.count ?? 0);
      if (calls <= 0) continue;
      rows.push({ path, p50: summarize(w.recent.slice(-Math.min(calls, w.recent.length))).p50, calls });
    }
  }
  return rows.sort(byTree);
}

export function formatBreakdown(rows: readonly BreakdownRow[]): string {
  if (rows.length === 0) return 'breakdown: the endpoint reports no step durations\n';
  const lines = ["breakdown (median ms per call, from the daemon's spans; a step run twice in a call is summed)"];
  for (const r of rows) {
    const parts = r.path.split(' / ');
    const label = `${'  '.repeat(parts.length - 1)}${parts[parts.length - 1] as string}`;
    lines.push(`${label.padEnd(44)}${r.p50.toFixed(2).padStart(9)}  (${r.calls} calls)`);
  }
  return `${lines.join('\n')}\n`;
}
