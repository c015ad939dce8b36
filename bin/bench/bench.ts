import { randomBytes } from 'node:crypto';
import { CriClient } from '../../cri/client.js';
import { NamespaceMode } from '../../cri/generated/api.js';
import { errorMessage } from '../../core/errors.js';
import { benchPodConfig } from './bench-objects.js';
import { breakdown, type BreakdownRow, formatBreakdown, stepSnapshot } from './breakdown.js';
import { concurrently } from './concurrently.js';
import { containerLifecycles } from './container-lifecycles.js';
import { summarize, type Summary } from './stats.js';

export const SCENARIOS = ['version', 'status', 'pods', 'containers'] as const;
export type Scenario = (typeof SCENARIOS)[number];

export interface BenchOptions {
  /** A CRI socket: Cradle's, containerd's or CRI-O's. */
  endpoint: string;
  scenario: Scenario;
  count: number;
  concurrency: number;
  /** pods: host network skips CNI, to separate runtime cost from plugin cost. */
  hostNetwork?: boolean;
  /** containers: the image to run (pulled first when missing). */
  image?: string;
  /** Also read the daemon's per-step durations (Cradle only). */
  breakdown?: boolean;
  timeoutMs?: number;
}

export interface BenchRow {
  rpc: string;
  summary: Summary;
  errors: number;
  firstError: string | undefined;
  /** Completed calls per second over the phase. */
  throughput: number;
}

export interface BenchResult {
  endpoint: string;
  scenario: Scenario;
  count: number;
  concurrency: number;
  rows: BenchRow[];
  breakdown?: BreakdownRow[];
}

/** Runs `fn(i)` for i in [0, count) with at most `concurrency` in flight; returns each call's latency in ms. */
export async function phase(rpc: string, count: number, concurrency: number, fn: (i: number) => Promise<unknown>): Promise<BenchRow> {
  const samples: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const started = performance.now();
  await concurrently(count, concurrency, async (i) => {
    const t0 = performance.now();
    try {
      await fn(i);
      samples.push(performance.now() - t0);
    } catch (err) {
      errors++;
      firstError ??= errorMessage(err);
    }
  });
  const seconds = (performance.now() - started) / 1000;
  return { rpc, summary: summarize(samples), errors, firstError, throughput: samples.length / seconds };
}

/** pods: host network skips CNI, to separate runtime cost from plugin cost. */
function podNamespaces(opts: BenchOptions): object {
  return opts.hostNetwork ? { network: NamespaceMode.NODE, pid: NamespaceMode.CONTAINER, ipc: NamespaceMode.POD } : { pid: NamespaceMode.CONTAINER };
}

/**
 * The CRI load generator behind `cradle bench`: drives any CRI endpoint
 * with the same calls, so runtimes are compared under identical load.
 */
export async function runBench(opts: BenchOptions): Promise<BenchResult> {
  const client = new CriClient(opts.endpoint);
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const rows: BenchRow[] = [];
  let breakdownRows: BreakdownRow[] | undefined;
  try {
    await client.runtime.call('Version', {}, { timeoutMs: 10_000 });
    if (opts.scenario === 'containers') {
      if (!opts.image) throw new Error('the containers scenario needs --image');
      const present = await client.image.call('ImageStatus', { image: { image: opts.image } }, { timeoutMs });
      if (!present.image) await client.image.call('PullImage', { image: { image: opts.image } }, { timeoutMs });
    }
    const before = opts.breakdown ? await stepSnapshot(client) : undefined;
    switch (opts.scenario) {
      case 'version':
        rows.push(await phase('Version', opts.count, opts.concurrency, () => client.runtime.call('Version', {}, { timeoutMs })));
        break;
      case 'status':
        rows.push(await phase('Status', opts.count, opts.concurrency, () => client.runtime.call('Status', {}, { timeoutMs })));
        break;
      case 'pods': {
        const run = randomBytes(4).toString('hex');
        const ids: string[] = new Array<string>(opts.count).fill('');
        const nsOptions = podNamespaces(opts);
        rows.push(
          await phase('RunPodSandbox', opts.count, opts.concurrency, async (i) => {
            const res = await client.runtime.call('RunPodSandbox', { config: benchPodConfig(run, i, nsOptions) }, { timeoutMs });
            ids[i] = res.pod_sandbox_id;
          }),
        );
        const live = ids.filter((id) => id !== '');
        rows.push(
          await phase('StopPodSandbox', live.length, opts.concurrency, (i) =>
            client.runtime.call('StopPodSandbox', { pod_sandbox_id: live[i] as string }, { timeoutMs }),
          ),
        );
        rows.push(
          await phase('RemovePodSandbox', live.length, opts.concurrency, (i) =>
            client.runtime.call('RemovePodSandbox', { pod_sandbox_id: live[i] as string }, { timeoutMs }),
          ),
        );
        break;
      }
      case 'containers':
        rows.push(...(await containerLifecycles(client, opts.image as string, opts.count, opts.concurrency, podNamespaces(opts), timeoutMs)));
        break;
    }
    if (opts.breakdown) {
      const after = await stepSnapshot(client);
      breakdownRows =
        before && after
          ? breakdown(
              before,
              after,
              rows.map((r) => r.rpc),
            )
          : [];
    }
  } finally {
    client.close();
  }
  return {
    endpoint: opts.endpoint,
    scenario: opts.scenario,
    count: opts.count,
    concurrency: opts.concurrency,
    rows,
    ...(breakdownRows ? { breakdown: breakdownRows } : {}),
  };
}

export function formatBench(result: BenchResult): string {
  const lines = [
    `${result.scenario} x${result.count} at concurrency ${result.concurrency} against ${result.endpoint}`,
    'rpc                 p50 ms   p95 ms   p99 ms   max ms   calls/s  errors',
  ];
  for (const r of result.rows) {
    const f = (n: number) => n.toFixed(1).padStart(8);
    lines.push(
      `${r.rpc.padEnd(18)}${f(r.summary.p50)} ${f(r.summary.p95)} ${f(r.summary.p99)} ${f(r.summary.max)} ${r.throughput.toFixed(1).padStart(9)} ${String(r.errors).padStart(7)}`,
    );
    if (r.firstError) lines.push(`  first error: ${r.firstError}`);
  }
  return `${lines.join('\n')}\n${result.breakdown ? formatBreakdown(result.breakdown) : ''}`;
}
