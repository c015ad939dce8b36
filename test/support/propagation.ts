import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { MountPropagation } from '../../cri/generated/api.js';
import { BUSYBOX_IMAGE } from './busybox-node.js';
import type { TestNode } from './test-node.js';

export type PropagationMode = 'PROPAGATION_PRIVATE' | 'PROPAGATION_HOST_TO_CONTAINER' | 'PROPAGATION_BIDIRECTIONAL';

/** What each mode must carry: host → container, container → host. */
export const PROPAGATION_CASES: ReadonlyArray<readonly [PropagationMode, boolean, boolean]> = [
  ['PROPAGATION_PRIVATE', false, false],
  ['PROPAGATION_HOST_TO_CONTAINER', true, false],
  ['PROPAGATION_BIDIRECTIONAL', true, true],
];

/**
 * A shared tmpfs in the test node to mount from and to, as / is on a
 * systemd host (a test node's own mounts are private). Directories on it
 * exist only in the node's mount namespace, so they are made there.
 */
export async function sharedSource(node: TestNode, name = 'propagation'): Promise<string> {
  const source = join(node.dir, name);
  mkdirSync(source);
  for (const args of [
    ['-t', 'tmpfs', 'src', source],
    ['--make-shared', source],
  ]) {
    const r = await node.exec('mount', args);
    expect(r.code, r.stderr).to.equal(0);
  }
  return source;
}

async function inNode(node: TestNode, command: string, args: string[]): Promise<void> {
  const r = await node.exec(command, args);
  expect(r.code, `${command} ${args.join(' ')}: ${r.stderr}`).to.equal(0);
}

/**
 * Runs a privileged container of `pod` (with `handler`'s runtime) with a
 * mount of `<source>/<mode>` in that mode, mounts a tmpfs on the host side
 * and one from inside the container, and says which of them the other side saw.
 */
export async function propagationSeen(
  node: TestNode,
  pod: string,
  source: string,
  mode: PropagationMode,
): Promise<{ hostToContainer: boolean; containerToHost: boolean }> {
  const rt = node.client().runtime;
  const dir = join(source, mode);
  await inNode(node, 'mkdir', ['-p', join(dir, 'from-container'), join(dir, 'from-host')]);
  const name = mode.toLowerCase().replace(/_/g, '-');
  const id = (
    await rt.call('CreateContainer', {
      pod_sandbox_id: pod,
      config: {
        metadata: { name },
        image: { image: BUSYBOX_IMAGE },
        command: ['sleep', '600'],
        log_path: `${name}.log`,
        mounts: [{ container_path: '/shared', host_path: dir, propagation: MountPropagation[mode] }],
        linux: { security_context: { privileged: true } },
      },
    })
  ).container_id;
  await rt.call('StartContainer', { container_id: id });
  try {
    await inNode(node, 'mount', ['-t', 'tmpfs', 'fromhost', join(dir, 'from-host')]);
    const exec = async (script: string) =>
      Buffer.from((await rt.call('ExecSync', { container_id: id, cmd: ['sh', '-c', script], timeout: 60n })).stdout).toString();
    const hostToContainer = (await exec('grep -c " /shared/from-host " /proc/self/mountinfo || true')).trim() === '1';
    expect(await exec('mount -t tmpfs incontainer /shared/from-container && echo mounted')).to.contain('mounted');
    const containerToHost = node
      .mountinfo()
      .split('\n')
      .some((l) => l.split(' ')[4] === join(dir, 'from-container'));
    return { hostToContainer, containerToHost };
  } finally {
    await rt.call('RemoveContainer', { container_id: id });
    for (const sub of ['from-host', 'from-container']) await node.exec('umount', ['-l', join(dir, sub)]);
  }
}
