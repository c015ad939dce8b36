import { readdirSync, readFileSync, rmSync } from 'node:fs';
import { breakdown, type BreakdownRow, formatBreakdown, stepSnapshot } from '../../bin/bench/breakdown.js';
import { containerLifecycles } from '../../bin/bench/container-lifecycles.js';
import { NamespaceMode } from '../../cri/generated/api.js';
import { phase, type BenchRow } from '../../bin/bench/bench.js';
import { summarize } from '../../bin/bench/stats.js';
import { CriClient } from '../../cri/client.js';
import { busyboxEntries, type OciLayout } from '../support/oci-image.js';
import { runtimeFloor } from './runtime-floor.js';
import { type ServerTimer, serverTimer, sideBySide, withContainerd } from './side-by-side.js';

/**
 * Containers, Cradle and containerd side by side, each in its own node with
 * its own registry holding the same busybox image:
 *   - the container lifecycle (create, start, stop, remove) of N containers
 *     in one pod, one at a time, with Cradle's own breakdown per step and
 *     the floor under its create and start (the runtime and conmon alone);
 *   - ExecSync `true` in a running container, N times one after the other;
 *   - full pod start (RunPodSandbox + CreateContainer + StartContainer) and
 *     CreateContainer + StartContainer alone, over N pods, one at a time;
 *   - daemon RSS idle, with N running containers (a second after the last
 *     of them started, and once the node has been quiet for SETTLE_MS;
 *     conmon's or the shims' PSS beside it) and after they are removed;
 *   - ListContainers latency with M containers.
 * Usage: node dist/test/bench/containers.js [pods=100] [containers for the list=500]
 */
const IMAGE = '127.0.0.1:5000/bench/busybox:v1';
/** A node's steady state after a burst: long enough for a daemon that gives memory back when quiet to have done so. */
const SETTLE_MS = 30_000;

/** conmon's (Cradle) or the shims' (containerd) proportional set size, summed, in MiB. */
function monitorPss(runtime: string): number {
  const comm = runtime === 'cradle' ? 'conmon' : 'containerd-shim';
  let kb = 0;
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      if (!readFileSync(`/proc/${name}/comm`, 'utf8').startsWith(comm)) continue;
      kb += Number(/^Pss:\s+(\d+)/m.exec(readFileSync(`/proc/${name}/smaps_rollup`, 'utf8'))?.[1] ?? 0);
    } catch {
      // Gone while we looked.
    }
  }
  return kb / 1024;
}

function rssMiB(pid: number): number {
  const kb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  return kb / 1024;
}

interface RuntimeResult {
  runtime: string;
  rows: BenchRow[];
  rssIdle: number;
  rssBusy: number;
  /** The same, after SETTLE_MS with nothing asked of the daemon. */
  rssSettled: number;
  list: ReturnType<typeof summarize>;
  /** The same calls timed inside the daemon (its RPC log), where it can say. */
  listServer: ReturnType<typeof summarize> | undefined;
  /** conmon's or the shims' PSS with the containers running, MiB. */
  monitorsBusy: number;
  /** The daemon's RSS once those containers are removed again. */
  rssAfter: number;
  /** The daemon's own step medians of the lifecycle (Cradle). */
  steps: BreakdownRow[] | undefined;
}

/** Cradle's run also measures the runtime's floor under its steps (runtime-floor.ts). */
type Floor = (client: CriClient) => Promise<BenchRow[]>;

async function bench(runtime: string, socket: string, pid: number, pods: number, listed: number, server?: ServerTimer, floor?: Floor): Promise<RuntimeResult> {
  const c = new CriClient(socket);
  const rows: BenchRow[] = [];
  try {
    await c.image.call('PullImage', { image: { image: IMAGE } }, { timeoutMs: 120_000 });
    // Idle: after the pull's unpack workers, kept 10 s for a next layer, have gone.
    await new Promise((r) => setTimeout(r, 12_000));
    const rssIdle = rssMiB(pid);
    const podConfig = (i: number, tag: string) => ({
      metadata: { name: `${tag}-${i}`, namespace: 'bench', uid: `${tag}-${i}-${process.pid}`, attempt: 0 },
      hostname: `${tag}-${i}`,
      log_directory: `/tmp/cradle-bench-logs-${process.pid}/${runtime}/${tag}-${i}`,
    });
    const containerConfig = (name: string) => ({ metadata: { name }, image: { image: IMAGE }, command: ['sleep', '3600'], log_path: `${name}.log` });
    // The CRI validation suite's benchmark: create, start, stop, remove, one container at a time.
    const before = await stepSnapshot(c);
    rows.push(...(await containerLifecycles(c, IMAGE, pods, 1, { pid: NamespaceMode.CONTAINER }, 60_000)));
    const after = await stepSnapshot(c);
    const steps = before && after ? breakdown(before, after, ['CreateContainer', 'StartContainer', 'StopContainer', 'RemoveContainer']) : undefined;
    if (floor) rows.push(...(await floor(c)));
    const podIds: string[] = [];
    const running: string[] = [];
    const createStart: number[] = [];
    rows.push(
      await phase('full pod start', pods, 1, async (i) => {
        const config = podConfig(i, 'start');
        const pod = (await c.runtime.call('RunPodSandbox', { config }, { timeoutMs: 60_000 })).pod_sandbox_id;
        podIds.push(pod);
        const t0 = performance.now();
        const id = (
          await c.runtime.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig('app'), sandbox_config: config }, { timeoutMs: 60_000 })
        ).container_id;
        await c.runtime.call('StartContainer', { container_id: id }, { timeoutMs: 60_000 });
        createStart.push(performance.now() - t0);
        running.push(id);
      }),
    );
    const cs = summarize(createStart);
    rows.push({ rpc: 'Create+StartContainer', summary: cs, errors: 0, firstError: undefined, throughput: 0 });
    // A probe's cost: `true` in a running container, one after the other.
    rows.push(
      await phase('ExecSync true', pods, 1, (i) =>
        c.runtime.call('ExecSync', { container_id: running[i % running.length], cmd: ['true'], timeout: 30n }, { timeoutMs: 60_000 }),
      ),
    );
    await new Promise((r) => setTimeout(r, 1000));
    const rssBusy = rssMiB(pid);
    const monitorsBusy = monitorPss(runtime);
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    const rssSettled = rssMiB(pid);
    for (const id of podIds) {
      await c.runtime.call('StopPodSandbox', { pod_sandbox_id: id }, { timeoutMs: 60_000 });
      await c.runtime.call('RemovePodSandbox', { pod_sandbox_id: id }, { timeoutMs: 60_000 });
    }
    await new Promise((r) => setTimeout(r, 1000));
    const rssAfter = rssMiB(pid);
    // Many containers, created (not started) in few pods: what ListContainers must walk.
    const listPods: string[] = [];
    const perPod = 50;
    for (let p = 0; p < Math.ceil(listed / perPod); p++) {
      const config = podConfig(p, 'list');
      const pod = (await c.runtime.call('RunPodSandbox', { config }, { timeoutMs: 60_000 })).pod_sandbox_id;
      listPods.push(pod);
      for (let i = 0; i < perPod && p * perPod + i < listed; i++) {
        await c.runtime.call('CreateContainer', { pod_sandbox_id: pod, config: containerConfig(`c${i}`), sandbox_config: config }, { timeoutMs: 60_000 });
      }
    }
    await server?.start();
    const lat: number[] = [];
    for (let i = 0; i < 200; i++) {
      const t0 = performance.now();
      const r = await c.runtime.call('ListContainers', {});
      lat.push(performance.now() - t0);
      if (r.containers.length < listed) throw new Error(`${runtime} listed ${r.containers.length} containers, expected ${listed}`);
    }
    for (const id of listPods) {
      await c.runtime.call('StopPodSandbox', { pod_sandbox_id: id }, { timeoutMs: 120_000 });
      await c.runtime.call('RemovePodSandbox', { pod_sandbox_id: id }, { timeoutMs: 120_000 });
    }
    const listServer = server ? summarize(server.durations('ListContainers').slice(-200)) : undefined;
    return { runtime, rows, rssIdle, rssBusy, rssSettled, monitorsBusy, rssAfter, list: summarize(lat), listServer, steps };
  } finally {
    c.close();
  }
}

async function main(): Promise<void> {
  const pods = Number(process.argv[2] ?? 100);
  const listed = Number(process.argv[3] ?? 500);
  const results: RuntimeResult[] = [];
  const image = (layout: OciLayout) => {
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'] }));
    return { repository: 'bench/busybox', tag: 'v1' };
  };
  try {
    await sideBySide(image, async ({ cradle: a, peer: b }) => {
      const daemon = await a.startDaemon();
      const floor: Floor = (client) => runtimeFloor(client, a, IMAGE, Math.min(pods, 30));
      results.push(await bench('cradle', a.socket, daemon.pid, pods, listed, serverTimer(a, daemon), floor));
      const r = await withContainerd(b, (containerd) => bench('containerd', containerd.socket, containerd.pid as number, pods, listed));
      if (r) results.push(r);
    });
  } finally {
    rmSync(`/tmp/cradle-bench-logs-${process.pid}`, { recursive: true, force: true });
  }
  process.stdout.write(`| runtime | measure | p50 ms | p95 ms |\n| --- | --- | --- | --- |\n`);
  for (const r of results) {
    for (const row of r.rows)
      process.stdout.write(`| ${r.runtime} | ${row.rpc} (x${row.summary.count}) | ${row.summary.p50.toFixed(1)} | ${row.summary.p95.toFixed(1)} |\n`);
    process.stdout.write(
      `| ${r.runtime} | ListContainers with ${listed} containers (x${r.list.count}) | ${r.list.p50.toFixed(2)} | ${r.list.p95.toFixed(2)} |\n`,
    );
    if (r.listServer)
      process.stdout.write(
        `| ${r.runtime} | ListContainers, inside the daemon (x${r.listServer.count}) | ${r.listServer.p50.toFixed(2)} | ${r.listServer.p95.toFixed(2)} |\n`,
      );
  }
  process.stdout.write(
    `\n| runtime | daemon RSS idle MiB | with ${pods} running containers MiB | the same, ${SETTLE_MS / 1000} s later MiB | conmon / shims PSS then, MiB | daemon RSS after their removal MiB |\n| --- | --- | --- | --- | --- | --- |\n`,
  );
  for (const r of results)
    process.stdout.write(
      `| ${r.runtime} | ${r.rssIdle.toFixed(1)} | ${r.rssBusy.toFixed(1)} | ${r.rssSettled.toFixed(1)} | ${r.monitorsBusy.toFixed(1)} | ${r.rssAfter.toFixed(1)} |\n`,
    );
  for (const r of results) if (r.steps) process.stdout.write(`\n${r.runtime}, inside the daemon:\n\n${formatBreakdown(r.steps)}`);
}

await main();
