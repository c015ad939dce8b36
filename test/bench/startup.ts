import { CriClient } from '../../cri/client.js';
import { TestNode } from '../support/test-node.js';
import { killAllTracked } from '../support/processes.js';
import { fmtMs, summarize } from '../../bin/bench/stats.js';

/**
 * Time from spawning `cradle daemon` to its first answered Version, over
 * repeated cold starts in a private network and mount namespace.
 * Usage: node dist/test/bench/startup.js [runs]
 */
async function firstVersion(node: TestNode): Promise<number> {
  const started = performance.now();
  const daemon = node.spawnDaemon();
  for (;;) {
    const client = new CriClient(node.socket);
    try {
      await client.runtime.call('Version', {}, { timeoutMs: 200 });
      const elapsed = performance.now() - started;
      daemon.process.kill('SIGTERM');
      await daemon.exited;
      return elapsed;
    } catch {
      await new Promise((r) => setTimeout(r, 5));
    } finally {
      client.close();
    }
  }
}

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 20);
  const node = await TestNode.create();
  const samples: number[] = [];
  try {
    for (let i = 0; i < runs; i++) {
      samples.push(await firstVersion(node));
    }
  } finally {
    await node.destroy();
    killAllTracked();
  }
  const s = summarize(samples);
  process.stdout.write(`daemon start to first Version over ${s.count} starts: p50 ${fmtMs(s.p50)} ms, p95 ${fmtMs(s.p95)} ms, max ${fmtMs(s.max)} ms\n`);
}

await main();
