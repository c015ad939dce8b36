import type { CriClient } from '../../cri/client.js';
import { CgroupDriver, ContainerState, PodSandboxState } from '../../cri/generated/api.js';

interface DaemonInfo {
  version: string;
  pid: number;
  configFiles: string[];
  cgroupVersion: number;
  handlers: Array<{ name: string; path: string; default: boolean }>;
}

function tally<T>(items: readonly T[], key: (t: T) => string): string {
  const counts = new Map<string, number>();
  for (const i of items) counts.set(key(i), (counts.get(key(i)) ?? 0) + 1);
  return counts.size === 0 ? '0' : [...counts].map(([k, n]) => `${n} ${k}`).join(', ');
}

/** `cradle status`: what an operator checks first on a node. */
export async function statusReport(client: CriClient, endpoint: string): Promise<string> {
  const [version, status, runtimeConfig, pods, containers, images] = await Promise.all([
    client.runtime.call('Version', {}, { timeoutMs: 30_000 }),
    client.runtime.call('Status', { verbose: true }, { timeoutMs: 30_000 }),
    client.runtime.call('RuntimeConfig', {}, { timeoutMs: 30_000 }),
    client.runtime.call('ListPodSandbox', {}, { timeoutMs: 30_000 }),
    client.runtime.call('ListContainers', {}, { timeoutMs: 30_000 }),
    client.image.call('ListImages', {}, { timeoutMs: 30_000 }),
  ]);
  const daemon = JSON.parse(status.info.daemon ?? '{}') as Partial<DaemonInfo>;
  const condition = (type: string) => {
    const c = status.status?.conditions.find((x) => x.type === type);
    if (!c) return 'unknown';
    return c.status ? 'yes' : `no (${c.reason}${c.message ? `: ${c.message}` : ''})`;
  };
  const driver = runtimeConfig.linux?.cgroup_driver === CgroupDriver.SYSTEMD ? 'systemd' : 'cgroupfs';
  const handlers = (daemon.handlers ?? []).map((h) => `${h.name}${h.default ? ' (default)' : ''} ${h.path}`);
  const lines = [
    `cradle ${version.runtime_version} (CRI ${version.runtime_api_version}) on ${endpoint}, pid ${daemon.pid ?? '?'}`,
    `config:           ${daemon.configFiles?.length ? daemon.configFiles.join(', ') : 'embedded default only'}`,
    `runtime handlers: ${handlers.length ? handlers.join('; ') : status.runtime_handlers.map((h) => h.name || '(default)').join(', ')}`,
    `cgroups:          ${driver} driver, cgroup v${daemon.cgroupVersion ?? '?'}`,
    `runtime ready:    ${condition('RuntimeReady')}`,
    `network ready:    ${condition('NetworkReady')}`,
    `pods:             ${tally(pods.items, (p) => (p.state === PodSandboxState.SANDBOX_READY ? 'ready' : 'notready'))}`,
    `containers:       ${tally(containers.containers, (c) => ContainerState[c.state].replace('CONTAINER_', '').toLowerCase())}`,
    `images:           ${images.images.length}`,
  ];
  return `${lines.join('\n')}\n`;
}
