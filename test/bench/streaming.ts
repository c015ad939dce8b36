import { join } from 'node:path';
import { summarize } from '../../bin/bench/stats.js';
import { CriClient } from '../../cri/client.js';
import { Kubectl } from '../support/kubectl.js';
import { busyboxEntries, type OciLayout } from '../support/oci-image.js';
import type { TestNode } from '../support/test-node.js';
import { sideBySide, withContainerd } from './side-by-side.js';

/**
 * Streaming, Cradle and containerd side by side, each behind the same
 * kubectl 1.20 and kubelet stand-in (test/support/kube-shim.ts):
 *   - `kubectl exec -- true`, one after another (kubectl's own start-up is
 *     in every sample, the same for both);
 *   - throughput of `kubectl exec -- head -c N /dev/zero`.
 * Usage: node dist/test/bench/streaming.js [execs=30] [MiB=256]
 */
const IMAGE = '127.0.0.1:5000/bench/busybox:v1';

interface Result {
  runtime: string;
  exec: ReturnType<typeof summarize>;
  mibPerSecond: number;
}

async function bench(runtime: string, node: TestNode, socket: string, port: number, execs: number, mib: number): Promise<Result> {
  const c = new CriClient(socket);
  const kubectl = new Kubectl(node, port, socket);
  try {
    await c.image.call('PullImage', { image: { image: IMAGE } }, { timeoutMs: 120_000 });
    const config = {
      metadata: { name: 'bench', namespace: 'bench', uid: `bench-${runtime}-${process.pid}`, attempt: 0 },
      hostname: 'bench',
      log_directory: join(node.dir, 'bench-logs'),
    };
    const pod = (await c.runtime.call('RunPodSandbox', { config }, { timeoutMs: 60_000 })).pod_sandbox_id;
    const app = (
      await c.runtime.call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'app' }, image: { image: IMAGE }, command: ['sleep', '3600'], log_path: 'app.log' },
        sandbox_config: config,
      })
    ).container_id;
    await c.runtime.call('StartContainer', { container_id: app });
    await kubectl.start();
    kubectl.addPod('bench', 'bench', pod, { app });
    const lat: number[] = [];
    for (let i = 0; i < execs; i++) {
      const t0 = performance.now();
      const r = await kubectl.run(['exec', '-n', 'bench', 'bench', '-c', 'app', '--', 'true']);
      lat.push(performance.now() - t0);
      if (r.code !== 0) throw new Error(`${runtime}: kubectl exec failed: ${r.stderr}`);
    }
    const bytes = mib * 1024 * 1024;
    const t0 = performance.now();
    // wc inside the node counts what came through, so the output never has to sit in memory here.
    const r = await node.exec('sh', ['-c', `${kubectlCommand(kubectl)} exec -n bench bench -c app -- head -c ${bytes} /dev/zero | wc -c`], {
      timeoutMs: 600_000,
    });
    const seconds = (performance.now() - t0) / 1000;
    if (Number(r.stdout.trim()) !== bytes) throw new Error(`${runtime}: ${r.stdout.trim()} bytes came through, expected ${bytes}: ${r.stderr}`);
    await c.runtime.call('StopPodSandbox', { pod_sandbox_id: pod }, { timeoutMs: 60_000 });
    await c.runtime.call('RemovePodSandbox', { pod_sandbox_id: pod }, { timeoutMs: 60_000 });
    return { runtime, exec: summarize(lat), mibPerSecond: mib / seconds };
  } finally {
    await kubectl.stop();
    c.close();
  }
}

function kubectlCommand(k: Kubectl): string {
  return `/var/cache/cradle-test/kubernetes-client/usr/bin/kubectl --server http://127.0.0.1:${k.port}`;
}

async function main(): Promise<void> {
  const execs = Number(process.argv[2] ?? 30);
  const mib = Number(process.argv[3] ?? 256);
  const results: Result[] = [];
  const image = (layout: OciLayout) => {
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'] }));
    return { repository: 'bench/busybox', tag: 'v1' };
  };
  await sideBySide(image, async ({ cradle, peer }) => {
    await cradle.startDaemon();
    results.push(await bench('cradle', cradle, cradle.socket, 16443, execs, mib));
    const r = await withContainerd(peer, (containerd) => bench('containerd', peer, containerd.socket, 16444, execs, mib));
    if (r) results.push(r);
  });
  process.stdout.write(
    `| runtime | kubectl exec -- true (x${execs}) p50 ms | p95 ms | exec output throughput MiB/s (${mib} MiB) |\n| --- | --- | --- | --- |\n`,
  );
  for (const r of results) process.stdout.write(`| ${r.runtime} | ${r.exec.p50.toFixed(1)} | ${r.exec.p95.toFixed(1)} | ${r.mibPerSecond.toFixed(1)} |\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
