import { randomBytes } from 'node:crypto';
import { errorMessage } from '../../core/errors.js';
import type { CriClient } from '../../cri/client.js';
import type { BenchRow } from './bench.js';
import { concurrently } from './concurrently.js';
import { benchPodConfig } from './bench-objects.js';
import { summarize } from './stats.js';

const STEPS = ['CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer'] as const;
type Step = (typeof STEPS)[number];

/**
 * The containers scenario, as the CRI validation suite's benchmark runs
 * it: in one pod, `count` containers each created, started, stopped (at
 * once: timeout 0) and removed, one after the other per worker. Each RPC
 * gets a row, and the whole lifecycle one more.
 */
export async function containerLifecycles(
  client: CriClient,
  image: string,
  count: number,
  concurrency: number,
  namespaceOptions: object,
  timeoutMs: number,
): Promise<BenchRow[]> {
  const run = randomBytes(4).toString('hex');
  const config = benchPodConfig(run, 0, namespaceOptions);
  const pod = (await client.runtime.call('RunPodSandbox', { config }, { timeoutMs })).pod_sandbox_id;
  const samples = new Map<Step | 'lifecycle', number[]>([...STEPS, 'lifecycle' as const].map((s) => [s, []]));
  const errors = new Map<Step, { count: number; first: string }>();
  const timed = async <T>(s: Step, call: () => Promise<T>): Promise<T | undefined> => {
    const t0 = performance.now();
    try {
      const v = await call();
      samples.get(s)?.push(performance.now() - t0);
      return v;
    } catch (err) {
      const e = errors.get(s) ?? { count: 0, first: errorMessage(err) };
      e.count++;
      errors.set(s, e);
      return undefined;
    }
  };
  const started = performance.now();
  const lifecycle = async (i: number) => {
    const t0 = performance.now();
    const created = await timed('CreateContainer', () =>
      client.runtime.call(
        'CreateContainer',
        {
          pod_sandbox_id: pod,
          config: { metadata: { name: `c-${i}` }, image: { image }, command: ['sleep', '3600'], log_path: `c-${i}.log` },
          sandbox_config: config,
        },
        { timeoutMs },
      ),
    );
    if (!created) return;
    const id = created.container_id;
    const ok =
      (await timed('StartContainer', () => client.runtime.call('StartContainer', { container_id: id }, { timeoutMs }))) !== undefined &&
      (await timed('StopContainer', () => client.runtime.call('StopContainer', { container_id: id, timeout: 0n }, { timeoutMs }))) !== undefined;
    const removed = (await timed('RemoveContainer', () => client.runtime.call('RemoveContainer', { container_id: id }, { timeoutMs }))) !== undefined;
    if (ok && removed) samples.get('lifecycle')?.push(performance.now() - t0);
  };
  try {
    await concurrently(count, concurrency, lifecycle);
  } finally {
    await client.runtime.call('StopPodSandbox', { pod_sandbox_id: pod }, { timeoutMs }).catch(() => undefined);
    await client.runtime.call('RemovePodSandbox', { pod_sandbox_id: pod }, { timeoutMs }).catch(() => undefined);
  }
  const seconds = (performance.now() - started) / 1000;
  return [...samples].map(([rpc, s]) => {
    const e = rpc === 'lifecycle' ? undefined : errors.get(rpc);
    return { rpc, summary: summarize(s), errors: e?.count ?? 0, firstError: e?.first, throughput: s.length / seconds };
  });
}
