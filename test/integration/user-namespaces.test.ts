import { chmodSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { type ContainerConfig, ContainerState, NamespaceMode, type NamespaceOption, type PodSandboxConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { BUSYBOX_IMAGE as IMAGE, busyboxNode, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { containerCgroups, settledLeaks } from '../support/leaks.js';
import { podConfig, podInfo } from '../support/pods.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';
const BLOCK = 65536;

/** userns_options as kubelet sends them for a pod given ids [host, host + 65536). */
function podUserns(host: number, extra: Init<PodSandboxConfig> = {}): Init<PodSandboxConfig> {
  const map = [{ container_id: 0, host_id: host, length: BLOCK }];
  return { linux: { security_context: { namespace_options: { userns_options: { mode: NamespaceMode.POD, uids: map, gids: map } } } }, ...extra };
}

describe('user namespaces', function () {
  this.timeout(180_000);
  let node: TestNode;
  let registry: TestRegistry;
  let cgroupBaseline: Set<string>;
  let layerFile: string;

  const rt = () => node.client().runtime;
  const exec = async (id: string, cmd: string[]) => {
    const r = await rt().call('ExecSync', { container_id: id, cmd, timeout: 60n });
    expect(r.exit_code, `${cmd.join(' ')}: ${r.stderr.toString()}`).to.equal(0);
    return r.stdout.toString().trim();
  };
  const runPod = async (name: string, host: number, extra: Init<PodSandboxConfig> = {}) =>
    (await rt().call('RunPodSandbox', { config: podConfig(name, { log_directory: join(node.dir, 'logs'), ...podUserns(host, extra) }) })).pod_sandbox_id;
  const sleeper = (pod: string, name: string, extra: Init<ContainerConfig> = {}) => startBusybox(node, pod, name, { command: ['sleep', '3600'], ...extra });
  /** The image's one layer as it is on disk: owner and mode of its busybox, whatever the containers did. */
  const layerIntact = () => {
    const st = statSync(layerFile);
    expect([st.uid, st.gid, st.mode & 0o7777]).to.deep.equal([0, 0, 0o755]);
  };
  const noLeaks = async (when: string) => {
    expect(await settledLeaks(node, cgroupBaseline, when), when).to.deep.equal([]);
  };
  const removeAllPods = async () => {
    for (const p of (await rt().call('ListPodSandbox', {})).items) {
      await rt().call('StopPodSandbox', { pod_sandbox_id: p.id });
      await rt().call('RemovePodSandbox', { pod_sandbox_id: p.id });
    }
  };

  before(async () => {
    cgroupBaseline = containerCgroups();
    ({ node, registry } = await busyboxNode());
    const layers = join(node.dir, 'root', 'images', 'layers');
    const [layer] = readdirSync(layers);
    layerFile = join(layers, layer ?? '', 'diff', 'bin', 'busybox');
  });

  afterEach(async () => {
    await removeAllPods();
    await noLeaks('after the test');
    layerIntact();
  });

  after(async () => {
    await registry?.stop();
    await node?.destroy();
  });

  it('says every runtime handler supports them', async () => {
    const handlers = (await rt().call('Status', {})).runtime_handlers;
    expect(handlers.length).to.be.greaterThan(0);
    for (const h of handlers) expect(h.features?.user_namespaces, `handler "${h.name}"`).to.equal(true);
  });

  it('runs a pod as root of its own user namespace, the image its own and its writes the mapped ids on the host', async () => {
    const host = 10 * BLOCK;
    const pod = await runPod('userns', host);
    const status = (await rt().call('PodSandboxStatus', { pod_sandbox_id: pod })).status;
    const opts = status?.linux?.namespaces?.options?.userns_options;
    expect(opts?.mode).to.equal(NamespaceMode.POD);
    expect(opts?.uids).to.deep.equal([{ container_id: 0, host_id: host, length: BLOCK }]);
    expect((await podInfo(node, pod)).namespaces.user).to.be.a('string');

    const id = await sleeper(pod, 'main');
    expect((await exec(id, ['cat', '/proc/self/uid_map'])).split(/\s+/)).to.deep.equal(['0', String(host), String(BLOCK)]);
    expect((await exec(id, ['cat', '/proc/self/gid_map'])).split(/\s+/)).to.deep.equal(['0', String(host), String(BLOCK)]);
    expect(await exec(id, ['id', '-u'])).to.equal('0');
    // The image's files are root's inside, not the overflow id.
    expect((await exec(id, ['ls', '-ln', '/bin/busybox'])).split(/\s+/).slice(2, 4)).to.deep.equal(['0', '0']);
    await exec(id, ['sh', '-c', 'echo written > /written; mkdir -p /made && busybox chown 1000:1000 /made']);
    const upper = join(node.dir, 'root', 'containers', id, 'upper');
    expect([statSync(join(upper, 'written')).uid, statSync(join(upper, 'written')).gid]).to.deep.equal([host, host]);
    expect(statSync(join(upper, 'made')).uid).to.equal(host + 1000);
    // A second container of the pod shares the namespace.
    const other = await sleeper(pod, 'other');
    expect(await exec(other, ['busybox', 'readlink', '/proc/self/ns/user'])).to.equal(await exec(id, ['busybox', 'readlink', '/proc/self/ns/user']));
    // Copying up a lower file in the container leaves the layer as it was.
    await exec(id, ['sh', '-c', 'busybox chmod 700 /bin/busybox && touch /bin/busybox']);
    layerIntact();
  });

  it('shows a host path volume with its owners mapped through the namespace', async () => {
    const vol = join(node.dir, 'volume');
    mkdirSync(vol, { recursive: true });
    writeFileSync(join(vol, 'from-host'), 'hello');
    const pod = await runPod('userns-vol', 11 * BLOCK);
    const id = await sleeper(pod, 'vol', { mounts: [{ container_path: '/data', host_path: vol }] });
    expect((await exec(id, ['ls', '-ln', '/data/from-host'])).split(/\s+/).slice(2, 4)).to.deep.equal(['0', '0']);
    await exec(id, ['sh', '-c', 'echo back > /data/from-container']);
    const st = statSync(join(vol, 'from-container'));
    expect([st.uid, st.gid]).to.deep.equal([0, 0]);
    // Removing the container unmounts the idmapped volume and keeps its files.
    await rt().call('StopContainer', { container_id: id, timeout: 0n });
    await rt().call('RemoveContainer', { container_id: id });
    expect(readdirSync(vol).sort()).to.deep.equal(['from-container', 'from-host']);
  });

  it('refuses what a user namespace cannot give, with INVALID_ARGUMENT and nothing left behind', async () => {
    const pod = await runPod('userns-refuse', 12 * BLOCK);
    const privileged = await grpcFailure(
      rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name: 'priv' }, image: { image: IMAGE }, linux: { security_context: { privileged: true } } },
      }),
    );
    expect(privileged.code).to.equal(Code.INVALID_ARGUMENT);
    expect(privileged.details).to.match(/privileged/);
    await noLeaks('after a refused privileged container');

    const map = (host_id: number, length = BLOCK, container_id = 0) => ({ container_id, host_id, length });
    const userns = (uids: ReturnType<typeof map>[], extra: Init<NamespaceOption> = {}): Init<PodSandboxConfig> => ({
      linux: { security_context: { namespace_options: { userns_options: { mode: NamespaceMode.POD, uids, gids: uids }, ...extra } } },
    });
    const bad: [string, Init<PodSandboxConfig>, RegExp][] = [
      ['a length not a multiple of 65536', userns([map(13 * BLOCK, 1000)]), /length 1000/],
      ['the host root', userns([map(0)]), /host_id 0/],
      ['overlapping ranges', userns([map(15 * BLOCK, 2 * BLOCK), map(16 * BLOCK, BLOCK, 5 * BLOCK)]), /overlap/],
      ['no root', userns([map(17 * BLOCK, BLOCK, BLOCK)]), /root/],
      ['host network', userns([map(18 * BLOCK)], { network: NamespaceMode.NODE }), /network/],
    ];
    for (const [what, config, message] of bad) {
      const err = await grpcFailure(rt().call('RunPodSandbox', { config: podConfig('bad-userns', config) }));
      expect(err.code, what).to.equal(Code.INVALID_ARGUMENT);
      expect(err.details, what).to.match(message);
    }
    expect((await rt().call('ListPodSandbox', {})).items.map((p) => p.id)).to.deep.equal([pod]);
  });

  for (const step of ['CreateContainer/rootfs-mounted', 'CreateContainer/bundle-written', 'CreateContainer/runtime-created']) {
    it(`undoes a create killed at ${step} without touching the layers or the volume`, async () => {
      const vol = join(node.dir, 'crash-volume');
      mkdirSync(vol, { recursive: true });
      writeFileSync(join(vol, 'kept'), 'kept');
      const pod = await runPod('userns-crash', 20 * BLOCK);
      await node.stopDaemon('SIGTERM');
      const daemon = await node.startDaemon([], undefined, { CRADLE_FAILPOINTS: step });
      await grpcFailure(
        rt().call('CreateContainer', {
          pod_sandbox_id: pod,
          config: { metadata: { name: 'crash' }, image: { image: IMAGE }, mounts: [{ container_path: '/data', host_path: vol }] },
        }),
      );
      await daemon.exited;
      await node.startDaemon();
      expect((await rt().call('ListContainers', {})).containers).to.deep.equal([]);
      await noLeaks(`after a crash at ${step}`);
      layerIntact();
      expect(readdirSync(vol)).to.deep.equal(['kept']);
      // The pod still runs containers.
      const id = await sleeper(pod, 'after');
      expect(await exec(id, ['id', '-u'])).to.equal('0');
      const state = (await rt().call('ContainerStatus', { container_id: id })).status?.state;
      expect(state).to.equal(ContainerState.CONTAINER_RUNNING);
    });
  }

  it('says why it cannot give them when a directory above its state is closed to the namespace', async () => {
    await node.stopDaemon('SIGTERM');
    chmodSync(node.dir, 0o700);
    try {
      const daemon = await node.startDaemon();
      for (const h of (await rt().call('Status', {})).runtime_handlers) expect(h.features?.user_namespaces, `handler "${h.name}"`).to.equal(false);
      expect(daemon.log()).to.contain(`${node.dir} (mode 700) above ${join(node.dir, 'root', 'containers')} is not searchable by others`);
      const err = await grpcFailure(rt().call('RunPodSandbox', { config: podConfig('closed', podUserns(21 * BLOCK)) }));
      expect(err.code).to.equal(Code.FAILED_PRECONDITION);
      expect((await rt().call('ListPodSandbox', {})).items).to.deep.equal([]);
    } finally {
      await node.stopDaemon('SIGTERM');
      chmodSync(node.dir, 0o711);
      await node.startDaemon();
    }
  });
});
