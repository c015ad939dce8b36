import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchPodConfig } from '../../bin/bench/bench-objects.js';
import type { BenchRow } from '../../bin/bench/bench.js';
import { summarize } from '../../bin/bench/stats.js';
import type { CriClient } from '../../cri/client.js';
import { NamespaceMode } from '../../cri/generated/api.js';
import type { TestNode } from '../support/test-node.js';

const RUN = fileURLToPath(new URL('./runtime-floor-run.js', import.meta.url));
const RUNC = '/usr/bin/runc';
const CONMON = '/usr/bin/conmon';

function row(rpc: string, samples: readonly number[]): BenchRow {
  return { rpc, summary: summarize(samples), errors: 0, firstError: undefined, throughput: 0 };
}

/**
 * What CreateContainer and StartContainer cannot go below on this machine,
 * in the same run as the steps they bound: Cradle creates (not starts) a
 * container like the lifecycle's, and runtime-floor-run.ts runs its bundle
 * `count` times with the runtime alone and under conmon (Cradle's node only).
 */
export async function runtimeFloor(client: CriClient, node: TestNode, image: string, count: number): Promise<BenchRow[]> {
  const timeoutMs = 120_000;
  const config = benchPodConfig(`floor-${randomBytes(4).toString('hex')}`, 0, { pid: NamespaceMode.CONTAINER });
  const pod = (await client.runtime.call('RunPodSandbox', { config }, { timeoutMs })).pod_sandbox_id;
  const scratch = join(node.dir, 'runtime-floor');
  try {
    const { container_id: id } = await client.runtime.call(
      'CreateContainer',
      {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'floor' }, image: { image }, command: ['sleep', '3600'], log_path: 'floor.log' },
        sandbox_config: config,
      },
      { timeoutMs },
    );
    const bundle = join(node.dir, 'run', 'containers', id);
    const r = await node.exec(process.execPath, [RUN, bundle, String(count), scratch, RUNC, CONMON], { timeoutMs: count * timeoutMs });
    if (r.code !== 0) throw new Error(`runtime floor: ${r.stderr.trim()}`);
    const s = JSON.parse(r.stdout) as { create: number[]; conmonCreate: number[]; start: number[] };
    return [
      row('floor: runc create, no daemon', s.create),
      row('floor: conmon + runc create, no daemon', s.conmonCreate),
      row('floor: runc start, no daemon', s.start),
    ];
  } finally {
    await client.runtime.call('StopPodSandbox', { pod_sandbox_id: pod }, { timeoutMs });
    await client.runtime.call('RemovePodSandbox', { pod_sandbox_id: pod }, { timeoutMs });
    rmSync(scratch, { recursive: true, force: true });
  }
}
