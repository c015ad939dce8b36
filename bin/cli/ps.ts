import type { CriClient } from '../../cri/client.js';
import { ContainerState, PodSandboxState } from '../../cri/generated/api.js';
import { timerMs } from '../../core/timers.js';
import { formatAge, formatBytes, formatTable } from './common.js';

const state = (s: ContainerState) => ContainerState[s].replace('CONTAINER_', '').toLowerCase();

/**
 * `cradle ps` (and each frame of `cradle top`): every pod and its
 * containers with state, age, restarts (kubelet's attempt), CPU and memory
 * from the stats RPCs. A pod without containers gets one line of its own.
 */
export async function psReport(client: CriClient, now = Date.now()): Promise<string> {
  const [pods, containers, stats] = await Promise.all([
    client.runtime.call('ListPodSandbox', {}, { timeoutMs: 30_000 }),
    client.runtime.call('ListContainers', {}, { timeoutMs: 30_000 }),
    client.runtime.call('ListContainerStats', {}, { timeoutMs: 30_000 }),
  ]);
  const usage = new Map(stats.stats.map((s) => [s.attributes?.id ?? '', s]));
  const rows: string[][] = [];
  const byCreation = <T extends { created_at: bigint }>(a: T, b: T) => (a.created_at < b.created_at ? -1 : a.created_at > b.created_at ? 1 : 0);
  for (const pod of [...pods.items].sort(byCreation)) {
    const podName = `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? ''}`;
    const podState = pod.state === PodSandboxState.SANDBOX_READY ? 'ready' : 'notready';
    const own = containers.containers.filter((c) => c.pod_sandbox_id === pod.id).sort(byCreation);
    if (own.length === 0) rows.push([pod.id.slice(0, 13), podName, podState, '-', '-', formatAge(now - Number(pod.created_at / 1_000_000n)), '-', '-', '-']);
    for (const c of own) {
      const s = usage.get(c.id);
      const running = c.state === ContainerState.CONTAINER_RUNNING;
      const cpu = running && s?.cpu?.usage_nano_cores ? `${(Number(s.cpu.usage_nano_cores.value) / 1e7).toFixed(1)}%` : '-';
      const mem = running && s?.memory?.working_set_bytes ? formatBytes(Number(s.memory.working_set_bytes.value)) : '-';
      rows.push([
        pod.id.slice(0, 13),
        podName,
        podState,
        c.metadata?.name ?? '',
        state(c.state),
        formatAge(now - Number(c.created_at / 1_000_000n)),
        String(c.metadata?.attempt ?? 0),
        cpu,
        mem,
      ]);
    }
  }
  return formatTable(['POD ID', 'POD', 'POD STATE', 'CONTAINER', 'STATE', 'AGE', 'RESTARTS', 'CPU', 'MEMORY'], rows);
}

/** `cradle top`: psReport redrawn every `intervalMs` on a terminal until interrupted. */
export async function top(client: CriClient, out: NodeJS.WriteStream, intervalMs: number, signal: AbortSignal): Promise<void> {
  while (!signal.aborted) {
    const frame = await psReport(client);
    // Home, clear to the end: the frame replaces the last one without flicker.
    out.write(`\x1b[H\x1b[2J${new Date().toISOString()}  (every ${intervalMs / 1000}s, Ctrl-C to quit)\n\n${frame}`);
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, timerMs(intervalMs));
      signal.addEventListener('abort', () => {
        clearTimeout(t);
        resolve();
      });
    });
  }
}
