import { formatBench, runBench, type BenchResult } from '../../bin/bench/bench.js';
import { formatBreakdown } from '../../bin/bench/breakdown.js';
import { bridgeConflist, writeConflist } from '../support/cni.js';
import { ContainerdPeer } from '../support/containerd.js';
import { killAllTracked } from '../support/processes.js';
import { removeTestCgroupParents } from '../support/cgroups.js';
import { TestNode } from '../support/test-node.js';

/**
 * RunPodSandbox, StopPodSandbox and RemovePodSandbox latency for Cradle and
 * containerd side by side: each in its own test node (network and mount
 * namespaces) with the same bridge + host-local + portmap + loopback CNI
 * config, driven by the same `cradle bench` load generator; Cradle's
 * breakdown per step follows the table.
 * Usage: node dist/test/bench/pods.js [count] [concurrency...]
 */
async function main(): Promise<void> {
  const count = Number(process.argv[2] ?? 100);
  const levels = process.argv.slice(3).map(Number);
  const concurrencies = levels.length > 0 ? levels : [1, 10];
  const cradleNode = await TestNode.create();
  const peerNode = await TestNode.create();
  const results: Array<{ runtime: string; result: BenchResult }> = [];
  try {
    writeConflist(cradleNode, bridgeConflist(cradleNode));
    writeConflist(peerNode, bridgeConflist(peerNode));
    await cradleNode.startDaemon(['--log-level', 'info']);
    const containerd = ContainerdPeer.available() ? new ContainerdPeer(peerNode) : undefined;
    await containerd?.start();
    for (const concurrency of concurrencies) {
      for (const [runtime, endpoint] of [['cradle', cradleNode.socket], ...(containerd ? [['containerd', containerd.socket]] : [])] as Array<
        [string, string]
      >) {
        // Cradle's own steps (CNI ADD per plugin, pins, pod init) show what holds each call.
        const result = await runBench({ endpoint, scenario: 'pods', count, concurrency, breakdown: runtime === 'cradle' });
        process.stderr.write(`${runtime}: ${formatBench(result)}`);
        results.push({ runtime, result });
      }
    }
    await containerd?.stop();
  } finally {
    await cradleNode.destroy();
    await peerNode.destroy();
    killAllTracked();
    removeTestCgroupParents();
  }
  process.stdout.write('| runtime | concurrency | rpc | p50 ms | p95 ms | calls/s | errors |\n| --- | --- | --- | --- | --- | --- | --- |\n');
  for (const { runtime, result } of results) {
    for (const r of result.rows) {
      process.stdout.write(
        `| ${runtime} | ${result.concurrency} | ${r.rpc} | ${r.summary.p50.toFixed(1)} | ${r.summary.p95.toFixed(1)} | ${r.throughput.toFixed(1)} | ${r.errors} |\n`,
      );
    }
  }
  for (const { runtime, result } of results)
    if (result.breakdown) process.stdout.write(`\n${runtime}, concurrency ${result.concurrency}, inside the daemon:\n\n${formatBreakdown(result.breakdown)}`);
}

await main();
