import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { summarize, type Summary } from '../../bin/bench/stats.js';
import { CriClient } from '../../cri/client.js';
import type { OciLayout } from '../support/oci-image.js';
import { readFileSync } from 'node:fs';
import { cpuSeconds } from './proc-usage.js';
import { sideBySide, withContainerd } from './side-by-side.js';

/**
 * Cold pull of a ~200 MB, 5-layer image from a docker-registry on loopback,
 * Cradle and containerd side by side (each in its own node with its own copy
 * of the registry), and ListImages latency while each pull runs: a pull must
 * not stall the daemon. Each pull starts after a rest (see REST_MS); the
 * order can be swapped to check that it does not matter.
 * Usage: node dist/test/bench/pull.js [MB per layer=40] [cradle-first|containerd-first]
 */
const IMAGE = '127.0.0.1:5000/bench/big:big';
/** The quiet before each pull: 5 s still left the second pull 20-40% slower; 15 s did not. */
const REST_MS = 15_000;

interface PullResult {
  runtime: string;
  seconds: number;
  mbPerSecond: number;
  /** CPU seconds the daemon (all its threads, and any decompressor it ran) and the registry used during the pull. */
  daemonCpu: number;
  registryCpu: number;
  listDuringPull: Summary;
}

async function measure(runtime: string, socket: string, pids: { daemon: number; registry: number }, image: string, bytes: number): Promise<PullResult> {
  const client = new CriClient(socket);
  // The first call after a daemon's start pays for its first use (80 ms here for Cradle), which is not the pull's doing.
  await client.image.call('ListImages', {});
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
  const cpu0 = { daemon: cpuSeconds(pids.daemon, true), registry: cpuSeconds(pids.registry) };
  const t0 = performance.now();
  try {
    await client.image.call('PullImage', { image: { image } }, { timeoutMs: 600_000 });
  } finally {
    pulling = false;
    await lister;
    client.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  return {
    runtime,
    seconds,
    mbPerSecond: bytes / 1e6 / seconds,
    daemonCpu: cpuSeconds(pids.daemon, true) - cpu0.daemon,
    registryCpu: cpuSeconds(pids.registry) - cpu0.registry,
    listDuringPull: summarize(listLatencies),
  };
}

async function main(): Promise<void> {
  const mbPerLayer = Number(process.argv[2] ?? 40);
  const first = process.argv[3] === 'containerd-first' ? 'containerd' : 'cradle';
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
  await sideBySide(image, async ({ cradle, peer, registries }) => {
    const daemon = await cradle.startDaemon();
    const registryPid = (r: typeof registries.cradle) => r.pid ?? -1;
    const pulls = {
      cradle: async () => {
        results.push(await measure('cradle', cradle.socket, { daemon: daemon.pid, registry: registryPid(registries.cradle) }, IMAGE, total));
      },
      containerd: async () => {
        const r = await withContainerd(peer, (containerd) =>
          measure('containerd', containerd.socket, { daemon: containerd.pid ?? -1, registry: registryPid(registries.peer) }, IMAGE, total),
        );
        if (r) results.push(r);
      },
    };
    for (const runtime of first === 'containerd' ? (['containerd', 'cradle'] as const) : (['cradle', 'containerd'] as const)) {
      // A pull right after another ran up to 50% slower here, whichever runtime it was, and used that much
      // more CPU time: the last pull's files go to disk and the machine rests first.
      execFileSync('sync');
      await new Promise((r) => setTimeout(r, REST_MS));
      await pulls[runtime]();
    }
  });
  process.stdout.write(`image: 5 layers, ${(total / 1e6).toFixed(1)} MB compressed (random data, gzip); ${first} pulled first\n`);
  process.stdout.write(
    '| runtime | pull s | MB/s | daemon CPU s | registry CPU s | ListImages during pull p50 ms | p99 ms | max ms | samples |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  for (const r of results) {
    const l = r.listDuringPull;
    process.stdout.write(
      `| ${r.runtime} | ${r.seconds.toFixed(2)} | ${r.mbPerSecond.toFixed(1)} | ${r.daemonCpu.toFixed(2)} | ${r.registryCpu.toFixed(2)} | ${l.p50.toFixed(2)} | ${l.p99.toFixed(2)} | ${l.max.toFixed(2)} | ${l.count} |\n`,
    );
  }
}

await main();
