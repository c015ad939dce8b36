import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { summarize, type Summary } from '../../bin/bench/stats.js';
import { CriClient } from '../../cri/client.js';
import type { OciLayout } from '../support/oci-image.js';
import { readFileSync } from 'node:fs';
import { sideBySide, withContainerd } from './side-by-side.js';

/**
 * Cold pull of a ~200 MB, 5-layer image from a docker-registry on loopback,
 * Cradle and containerd side by side (each in its own node with its own copy
 * of the registry), and ListImages latency while each pull runs: a pull must
 * not stall the daemon. Usage: node dist/test/bench/pull.js [MB per layer]
 */
interface PullResult {
  runtime: string;
  seconds: number;
  mbPerSecond: number;
  listDuringPull: Summary;
}

async function measure(runtime: string, socket: string, image: string, bytes: number): Promise<PullResult> {
  const client = new CriClient(socket);
  const listLatencies: number[] = [];
  let pulling = true;
  const lister = (async () => {
    while (pulling) {
      const t0 = performance.now();
      await client.image.call('ListImages', {});
      listLatencies.push(performance.now() - t0);
      await new Promise((r) => setTimeout(r, 10));
    }
  })();
  const t0 = performance.now();
  try {
    await client.image.call('PullImage', { image: { image } }, { timeoutMs: 600_000 });
  } finally {
    pulling = false;
    await lister;
    client.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return { runtime, seconds, mbPerSecond: bytes / 1e6 / seconds, listDuringPull: summarize(listLatencies) };
}

async function main(): Promise<void> {
  const mbPerLayer = Number(process.argv[2] ?? 40);
  const results: PullResult[] = [];
  let total = 0;
  const image = (layout: OciLayout) => {
    const desc = layout.image(
      Array.from({ length: 5 }, (_, i) => ({ entries: [{ name: `data/layer-${i}.bin`, content: randomBytes(mbPerLayer * 1e6) }] })),
      { Cmd: ['true'] },
    );
    layout.tag('big', desc);
    const manifest = JSON.parse(readFileSync(join(layout.dir, 'blobs', 'sha256', desc.digest.slice(7)), 'utf8')) as {
      layers: Array<{ size: number }>;
      config: { size: number };
    };
    total = manifest.layers.reduce((n, l) => n + l.size, manifest.config.size);
    return { repository: 'bench/big', tag: 'big' };
  };
  await sideBySide(image, async ({ cradle, peer }) => {
    await cradle.startDaemon();
    results.push(await measure('cradle', cradle.socket, '127.0.0.1:5000/bench/big:big', total));
    const r = await withContainerd(peer, (containerd) => measure('containerd', containerd.socket, '127.0.0.1:5000/bench/big:big', total));
    if (r) results.push(r);
  });
  process.stdout.write(`image: 5 layers, ${(total / 1e6).toFixed(1)} MB compressed (random data, gzip)\n`);
  process.stdout.write(
    '| runtime | pull s | MB/s | ListImages during pull p50 ms | p99 ms | max ms | samples |\n| --- | --- | --- | --- | --- | --- | --- |\n',
  );
  for (const r of results) {
    const l = r.listDuringPull;
    process.stdout.write(
      `| ${r.runtime} | ${r.seconds.toFixed(2)} | ${r.mbPerSecond.toFixed(1)} | ${l.p50.toFixed(2)} | ${l.p99.toFixed(2)} | ${l.max.toFixed(2)} | ${l.count} |\n`,
    );
  }
}

await main();
