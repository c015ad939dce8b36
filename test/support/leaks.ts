import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerState, PodSandboxState } from '../../cri/generated/api.js';
import { ipamDir, TEST_NETWORK } from './cni.js';
import { podInfo } from './pods.js';
import type { TestNode } from './test-node.js';
import { waitFor } from './wait.js';

const CGROUP_ROOT = '/sys/fs/cgroup';

/**
 * Cradle's cgroups below the default parent in any hierarchy, by name
 * without the `cradle-` prefix: `<container id>` and `init-<pod id>`.
 */
export function containerCgroups(): Set<string> {
  const ids = new Set<string>();
  const roots = existsSync(join(CGROUP_ROOT, 'cgroup.controllers')) ? [CGROUP_ROOT] : readdirSync(CGROUP_ROOT).map((c) => join(CGROUP_ROOT, c));
  for (const root of roots) {
    let names: string[];
    try {
      names = readdirSync(join(root, 'cradle'));
    } catch {
      continue;
    }
    for (const n of names) if (n.startsWith('cradle-')) ids.add(n.slice('cradle-'.length));
  }
  return ids;
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function jsonIds(dir: string): string[] {
  return entries(dir)
    .filter((n) => n.endsWith('.json'))
    .map((n) => n.slice(0, -'.json'.length));
}

function comm(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '';
  }
}

function args(pid: number): string[] {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    return [];
  }
}

/**
 * Everything a runtime can leave behind in a test node, checked against
 * what the daemon itself lists: mounts and namespace pins, monitor and
 * runtime processes, pod inits, container cgroups (those that appeared
 * since `cgroupBaseline`), IP leases, records, root filesystems and their
 * debris, and conmon's socket links. Returns one line per leak.
 */
export async function findLeaks(node: TestNode, cgroupBaseline: ReadonlySet<string> = new Set()): Promise<string[]> {
  const rt = node.client().runtime;
  const pods = (await rt.call('ListPodSandbox', {})).items;
  const containers = (await rt.call('ListContainers', {})).containers;
  const podIds = new Set(pods.map((p) => p.id));
  const containerIds = new Set(containers.map((c) => c.id));
  const live = new Set(containers.filter((c) => c.state !== ContainerState.CONTAINER_EXITED).map((c) => c.id));
  const ready = pods.filter((p) => p.state === PodSandboxState.SANDBOX_READY);
  const leaks: string[] = [];
  const root = join(node.dir, 'root');
  const runroot = join(node.dir, 'run');

  // Mounts: the READY pods' pins and /dev/shm, the containers' root filesystems; nothing else of the node's.
  const allowed = new Set<string>();
  /** READY pods' inits: pod id → pid. */
  const inits = new Map<string, number>();
  for (const p of ready) {
    const info = await podInfo(node, p.id);
    for (const pin of Object.values(info.namespaces)) if (pin) allowed.add(pin);
    if (info.shm) allowed.add(info.shm);
    if (info.initPid !== undefined) inits.set(p.id, info.initPid);
  }
  for (const id of containerIds) allowed.add(join(root, 'containers', id, 'merged'));
  // A container in a user namespace also has its layers idmapped under its root filesystem's dir, and its volumes under its bundle.
  const containerMount = (mp: string) =>
    [...containerIds].some(
      (id) => mp.startsWith(`${join(root, 'containers', id, 'lower')}/`) || mp.startsWith(`${join(runroot, 'containers', id, 'volumes')}/`),
    );
  for (const line of node.mountinfo().split('\n')) {
    const mp = line.split(' ')[4] ?? '';
    if (mp.startsWith(`${node.dir}/`) && !allowed.has(mp) && !containerMount(mp)) leaks.push(`mount ${mp}`);
  }

  // Processes in the node: conmon only for containers not yet exited, no runtime left running, inits only of READY pods.
  for (const pid of node.namespaceMembers()) {
    const name = comm(pid);
    if (name === 'conmon') {
      const a = args(pid);
      const id = a[a.indexOf('-c') + 1] ?? '';
      if (!live.has(id)) leaks.push(`conmon ${pid} of container ${id.slice(0, 12)}`);
    } else if (name === 'runc' || name === 'crun' || name.startsWith('runc:')) {
      leaks.push(`${name} ${pid} (${args(pid).join(' ').slice(0, 120)})`);
    } else if (name === 'catatonit' && ![...inits.values()].includes(pid)) {
      leaks.push(`pod init ${pid} of no READY pod`);
    }
  }

  // A pod's init has a cgroup of its own while the pod is READY.
  const initCgroups = new Set([...inits.keys()].map((pod) => `init-${pod}`));
  for (const id of containerCgroups())
    if (!cgroupBaseline.has(id) && !containerIds.has(id) && !initCgroups.has(id)) leaks.push(`cgroup cradle-${id.slice(0, 17)}`);

  // IP leases: host-local writes one file per IP holding the pod id.
  const readyIds = new Set(ready.map((p) => p.id));
  const leaseDir = join(ipamDir(node), TEST_NETWORK);
  for (const name of entries(leaseDir)) {
    if (!/^\d+\.\d+\.\d+\.\d+$/.test(name)) continue;
    const holder = readFileSync(join(leaseDir, name), 'utf8').split(/\s/)[0] ?? '';
    if (!readyIds.has(holder)) leaks.push(`IP lease ${name} of ${holder.slice(0, 12)}`);
  }

  for (const id of jsonIds(join(root, 'pods-records'))) if (!podIds.has(id)) leaks.push(`pod record ${id.slice(0, 12)}`);
  for (const id of jsonIds(join(root, 'containers-records'))) if (!containerIds.has(id)) leaks.push(`container record ${id.slice(0, 12)}`);
  for (const id of jsonIds(join(root, 'rootfs-records'))) if (!containerIds.has(id)) leaks.push(`root filesystem record ${id.slice(0, 12)}`);
  for (const name of entries(join(root, 'containers'))) if (!containerIds.has(name)) leaks.push(`root filesystem ${name.slice(0, 24)}`);
  for (const name of entries(join(runroot, 'containers'))) if (!containerIds.has(name)) leaks.push(`bundle ${name.slice(0, 12)}`);
  for (const name of entries(join(runroot, 'pods'))) if (!podIds.has(name)) leaks.push(`pod run dir ${name.slice(0, 12)}`);
  for (const name of entries(join(root, 'pods'))) if (!podIds.has(name)) leaks.push(`pod dir ${name.slice(0, 12)}`);
  // conmon names the link after the id, cut short when the socket dir's path is long.
  for (const name of entries(join(runroot, 'sockets')))
    if (![...containerIds].some((id) => id.startsWith(name))) leaks.push(`socket link ${name.slice(0, 12)}`);
  for (const name of entries(join(runroot, 'exits'))) if (!containerIds.has(name)) leaks.push(`exit file ${name.slice(0, 12)}`);
  for (const name of entries(join(runroot, 'checkpoints'))) leaks.push(`checkpoint scratch ${name}`);
  for (const name of entries(join(root, 'unfinished-archives'))) leaks.push(`unfinished archive record ${name}`);
  for (const name of entries(join(root, 'images', 'layers'))) if (/\.(tmp|trash)-/.test(name)) leaks.push(`partial layer ${name}`);
  for (const name of entries(join(root, 'images', 'l'))) {
    try {
      if (!existsSync(join(root, 'images', 'l', readlinkSync(join(root, 'images', 'l', name))))) leaks.push(`dangling layer link ${name}`);
    } catch {
      leaks.push(`unreadable layer link ${name}`);
    }
  }
  for (const dir of ['pods-records', 'containers-records', 'rootfs-records', join('images', 'records')]) {
    for (const name of entries(join(root, dir))) if (name.endsWith('.tmp')) leaks.push(`half-written record ${dir}/${name}`);
  }
  return leaks;
}

/**
 * The leaks left once background clean-up (root filesystems removed after
 * their container) has had a bounded while to finish: none, or what stayed.
 */
export async function settledLeaks(node: TestNode, cgroupBaseline: ReadonlySet<string>, when: string): Promise<string[]> {
  return waitFor(
    `no leaks ${when}`,
    async () => {
      const found = await findLeaks(node, cgroupBaseline);
      return found.length === 0 ? found : undefined;
    },
    30_000,
  ).catch(async () => findLeaks(node, cgroupBaseline));
}
