import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { concurrently } from '../../bin/bench/concurrently.js';
import { summarize } from '../../bin/bench/stats.js';
import { CriClient } from '../../cri/client.js';
import { bridgeConflist, TEST_SUBNET, writeConflist } from '../support/cni.js';
import { busyboxEntries, type OciLayout } from '../support/oci-image.js';
import type { TestNode } from '../support/test-node.js';
import { cpuSeconds, pssMiB } from './proc-usage.js';
import { benchConfig, type ConfigExtra, type ServerTimer, serverTimer, sideBySide, withContainerd } from './side-by-side.js';

/**
 * Density, as a node at kubelet's pod limit sees it, Cradle and containerd
 * side by side: N pods (default 250), each with one running busybox, then
 * W seconds (default 60) of a kubelet-like poller: ListPodSandbox and
 * ListContainers every second, ListContainerStats and ListPodSandboxStats
 * every 10 s, and one ExecSync probe per container every 10 s, spread over
 * the period. Reported: the daemon's own CPU over the window (utime +
 * stime, % of one core), each RPC's latency, and the memory of the
 * runtime's own processes per pod (PSS: the daemon's share, conmon or the
 * shims, pod init or pause).
 * Usage: node dist/test/bench/density.js [pods=250] [seconds=60] [runtimes=cradle,cradle-collected,containerd] [probe period s=10; 0: none]
 * (cradle-collected: `[stats] collection_period = "10s"`)
 */
const IMAGE = '127.0.0.1:5000/bench/busybox:v1';
/** Cradle as it ships (stats read on each call), and with a stats collection every 10 s (kubelet's own period). */
const CRADLE_VARIANTS: Record<string, ConfigExtra> = {
  cradle: {},
  'cradle-collected': { tables: '[stats]\ncollection_period = "10s"\n' },
};
/** 250 pods do not fit the tests' /24. */
const WIDE_SUBNET = '10.89.0.0/22';

interface ProcessInfo {
  pid: number;
  ppid: number;
  comm: string;
  cmdline: string;
}

function processes(): ProcessInfo[] {
  const out: ProcessInfo[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      out.push({ pid: Number(name), ppid, comm, cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').replace(/\0/g, ' ') });
    } catch {
      // Gone while we looked.
    }
  }
  return out;
}

function cgroupOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cgroup`, 'utf8');
  } catch {
    return '';
  }
}

const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

interface DensityResult {
  runtime: string;
  pods: number;
  startSeconds: number;
  cpuPercent: number;
  latency: Record<string, ReturnType<typeof summarize>>;
  failures: Record<string, { count: number; first: string }>;
  probeFailures: number;
  memory: { daemon: number; monitors: number; podProcesses: number; monitorCount: number; podProcessCount: number };
}

async function density(
  runtime: string,
  socket: string,
  daemonPid: number,
  pods: number,
  seconds: number,
  probeSeconds: number,
  helpers: (all: ProcessInfo[]) => { monitors: number[]; podProcesses: number[] },
  server?: ServerTimer,
): Promise<DensityResult> {
  const c = new CriClient(socket);
  const podIds: string[] = [];
  try {
    await c.image.call('PullImage', { image: { image: IMAGE } }, { timeoutMs: 120_000 });
    const t0 = performance.now();
    const containers: string[] = [];
    await concurrently(pods, 4, async (i) => {
      const config = {
        metadata: { name: `dense-${i}`, namespace: 'bench', uid: `dense-${i}-${process.pid}`, attempt: 0 },
        hostname: `dense-${i}`,
        log_directory: `/tmp/cradle-bench-logs-${process.pid}/${runtime}/dense-${i}`,
      };
      const pod = (await c.runtime.call('RunPodSandbox', { config }, { timeoutMs: 120_000 })).pod_sandbox_id;
      podIds.push(pod);
      const id = (
        await c.runtime.call(
          'CreateContainer',
          {
            pod_sandbox_id: pod,
            config: { metadata: { name: 'app' }, image: { image: IMAGE }, command: ['sleep', '36000'], log_path: 'app.log' },
            sandbox_config: config,
          },
          { timeoutMs: 120_000 },
        )
      ).container_id;
      await c.runtime.call('StartContainer', { container_id: id }, { timeoutMs: 120_000 });
      containers.push(id);
    });
    const startSeconds = (performance.now() - t0) / 1000;
    await new Promise((r) => setTimeout(r, 5000));

    const latency = new Map<string, number[]>();
    const failures = new Map<string, { count: number; first: string }>();
    let probeFailures = 0;
    /** A failed call is counted and its first error kept: one runtime's refusal must not end the other's run. */
    const timed = async (rpc: string, call: () => Promise<unknown>) => {
      const s = performance.now();
      try {
        await call();
      } catch (err) {
        const f = failures.get(rpc) ?? { count: 0, first: err instanceof Error ? err.message : String(err) };
        f.count++;
        failures.set(rpc, f);
        throw err;
      }
      const list = latency.get(rpc) ?? [];
      list.push(performance.now() - s);
      latency.set(rpc, list);
    };
    const tolerant = (rpc: string, call: () => Promise<unknown>) => timed(rpc, call).catch(() => undefined);
    await server?.start();
    const started = performance.now();
    const until = started + seconds * 1000;
    const sleepUntil = (t: number) => new Promise((r) => setTimeout(r, Math.max(0, t - performance.now())));
    const cpu0 = cpuSeconds(daemonPid);
    const lists = (async () => {
      for (let t = started; t < until; t += 1000) {
        await sleepUntil(t);
        await Promise.all([
          tolerant('ListPodSandbox', () => c.runtime.call('ListPodSandbox', {})),
          tolerant('ListContainers', () => c.runtime.call('ListContainers', {})),
        ]);
      }
    })();
    const stats = (async () => {
      for (let t = started; t < until; t += 10_000) {
        await sleepUntil(t);
        await Promise.all([
          tolerant('ListContainerStats', () => c.runtime.call('ListContainerStats', {})),
          tolerant('ListPodSandboxStats', () => c.runtime.call('ListPodSandboxStats', {})),
        ]);
      }
    })();
    const probes = (async () => {
      const inFlight: Promise<unknown>[] = [];
      const period = probeSeconds * 1000;
      for (let t = started; period > 0 && t < until; t += period) {
        for (const [i, id] of containers.entries()) {
          await sleepUntil(t + (i * period) / containers.length);
          inFlight.push(
            timed('ExecSync', () => c.runtime.call('ExecSync', { container_id: id, cmd: ['true'], timeout: 5n }, { timeoutMs: 30_000 })).catch(
              () => probeFailures++,
            ),
          );
        }
      }
      await Promise.all(inFlight);
    })();
    await Promise.all([lists, stats, probes]);
    const cpuPercent = ((cpuSeconds(daemonPid) - cpu0) / ((performance.now() - started) / 1000)) * 100;
    // The same calls as the daemon timed them, without the client's decoding (the bench's is JavaScript, kubelet's Go).
    for (const rpc of [...latency.keys()]) {
      const inside = server?.durations(rpc) ?? [];
      if (inside.length > 0) latency.set(`${rpc}, inside the daemon`, inside);
      if (rpc.endsWith('Stats')) for (const [name, ms] of server?.steps(rpc) ?? []) latency.set(`${rpc}: ${name}`, ms);
    }

    const all = processes();
    const { monitors, podProcesses } = helpers(all);
    const memory = {
      daemon: pssMiB(daemonPid),
      monitors: sum(monitors.map(pssMiB)),
      podProcesses: sum(podProcesses.map(pssMiB)),
      monitorCount: monitors.length,
      podProcessCount: podProcesses.length,
    };
    return {
      runtime,
      pods,
      startSeconds,
      cpuPercent,
      latency: Object.fromEntries([...latency].map(([k, v]) => [k, summarize(v)])),
      failures: Object.fromEntries(failures),
      probeFailures,
      memory,
    };
  } finally {
    for (const id of podIds) {
      await c.runtime.call('StopPodSandbox', { pod_sandbox_id: id }, { timeoutMs: 120_000 }).catch(() => undefined);
      await c.runtime.call('RemovePodSandbox', { pod_sandbox_id: id }, { timeoutMs: 120_000 }).catch(() => undefined);
    }
    c.close();
  }
}

function widen(node: TestNode): void {
  writeConflist(node, bridgeConflist(node).replace(TEST_SUBNET, WIDE_SUBNET));
}

async function main(): Promise<void> {
  const pods = Number(process.argv[2] ?? 250);
  const seconds = Number(process.argv[3] ?? 60);
  const runtimes = (process.argv[4] ?? `${Object.keys(CRADLE_VARIANTS).join(',')},containerd`).split(',');
  const probeSeconds = Number(process.argv[5] ?? 10);
  const results: DensityResult[] = [];
  const image = (layout: OciLayout) => {
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'] }));
    return { repository: 'bench/busybox', tag: 'v1' };
  };
  await sideBySide(image, async ({ cradle, peer }) => {
    widen(cradle);
    widen(peer);
    const keep = (r: DensityResult) => {
      process.stderr.write(`${JSON.stringify(r)}\n`);
      results.push(r);
    };
    for (const [variant, extra] of Object.entries(CRADLE_VARIANTS)) {
      if (!runtimes.includes(variant)) continue;
      writeFileSync(cradle.configPath, benchConfig(cradle, 'info', extra));
      const daemon = await cradle.startDaemon();
      const logTail = (err: unknown) => {
        process.stderr.write(`cradle's log ended with:\n${daemon.log().split('\n').slice(-30).join('\n')}\n`);
        throw err;
      };
      keep(
        await density(
          variant,
          cradle.socket,
          daemon.pid,
          pods,
          seconds,
          probeSeconds,
          (all) => ({
            monitors: all.filter((p) => p.comm === 'conmon' && p.cmdline.includes(cradle.dir)).map((p) => p.pid),
            // The pods share their PID namespace (CRI's default), so each has its own PID 1, in a cgroup of its own.
            podProcesses: all.filter((p) => p.comm === 'catatonit' && cgroupOf(p.pid).includes('/cradle-init-')).map((p) => p.pid),
          }),
          serverTimer(cradle, daemon, extra),
        ).catch(logTail),
      );
      await cradle.stopDaemon('SIGTERM');
    }
    if (!runtimes.includes('containerd')) return;
    const r = await withContainerd(peer, (containerd) =>
      density('containerd', containerd.socket, containerd.pid as number, pods, seconds, probeSeconds, (all) => {
        const shims = all.filter((p) => p.comm.startsWith('containerd-shim') && p.cmdline.includes(peer.dir));
        const shimPids = new Set(shims.map((s) => s.pid));
        return { monitors: [...shimPids], podProcesses: all.filter((p) => shimPids.has(p.ppid) && p.comm !== 'sleep').map((p) => p.pid) };
      }),
    );
    if (r) keep(r);
  });
  process.stdout.write(`| runtime | pods | start all s | daemon CPU % of a core | probe failures |\n| --- | --- | --- | --- | --- |\n`);
  for (const r of results)
    process.stdout.write(`| ${r.runtime} | ${r.pods} | ${r.startSeconds.toFixed(1)} | ${r.cpuPercent.toFixed(1)} | ${r.probeFailures} |\n`);
  process.stdout.write(`\n| runtime | rpc | calls | p50 ms | p99 ms | max ms |\n| --- | --- | --- | --- | --- | --- |\n`);
  for (const r of results)
    for (const [rpc, s] of Object.entries(r.latency))
      process.stdout.write(`| ${r.runtime} | ${rpc} | ${s.count} | ${s.p50.toFixed(1)} | ${s.p99.toFixed(1)} | ${s.max.toFixed(1)} |\n`);
  for (const r of results)
    for (const [rpc, f] of Object.entries(r.failures)) process.stdout.write(`\n${r.runtime}: ${rpc} failed ${f.count} times, first: ${f.first}\n`);
  process.stdout.write(
    `\n| runtime | daemon PSS MiB | monitors (conmon / shims) PSS MiB | pod processes (init / pause) PSS MiB | per pod MiB |\n| --- | --- | --- | --- | --- |\n`,
  );
  for (const r of results) {
    const m = r.memory;
    process.stdout.write(
      `| ${r.runtime} | ${m.daemon.toFixed(1)} | ${m.monitors.toFixed(1)} (${m.monitorCount}) | ${m.podProcesses.toFixed(1)} (${m.podProcessCount}) | ${((m.daemon + m.monitors + m.podProcesses) / r.pods).toFixed(2)} |\n`,
    );
  }
}

await main();
