import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { MountPropagation, SupplementalGroupsPolicy } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { BUSYBOX_IMAGE, busyboxNode, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { busyboxEntries, OciLayout } from '../support/oci-image.js';
import { podConfig, podInfo } from '../support/pods.js';
import { PROPAGATION_CASES, propagationSeen, sharedSource } from '../support/propagation.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';

const GROUPS_IMAGE = '127.0.0.1:5000/test/groups:v1';

/** The cgroup a process is in, in the memory hierarchy (cgroup v1 here). */
function memoryCgroup(pid: number): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => /^\d+:([^:]*,)?memory(,[^:]*)?:/.test(l));
  return line?.split(':')[2] ?? '';
}

/** kubelet's pod cgroups (the QoS level and the pod), removed again where they are empty. */
function removeKubepods(uidDir: string): void {
  for (const h of readdirSync('/sys/fs/cgroup')) {
    for (const dir of [uidDir, '/kubepods/besteffort', '/kubepods/burstable', '/kubepods']) {
      try {
        rmdirSync(join('/sys/fs/cgroup', h, dir));
      } catch {
        // not there, or in use by something else
      }
    }
  }
}

/**
 * Requests shaped exactly as kubelet sends them, where Cradle's own tests
 * used to send something simpler: kubelet's cgroupfs pod parents, and
 * mounts with propagation, both directions.
 */
describe('what kubelet sends', function () {
  this.timeout(120_000);
  let node: TestNode;
  let registry: TestRegistry;

  const rt = () => node.client().runtime;
  const run = (pod: string, name: string, extra: Init<ContainerConfig> = {}) => startBusybox(node, pod, name, { command: ['sleep', '600'], ...extra });

  before(async () => {
    ({ node, registry } = await busyboxNode({
      beforeStart: async (n, r) => {
        const layout = new OciLayout(join(n.dir, 'groups-layout'));
        const groups = { entries: [{ name: 'etc/group', content: 'root:x:0:\nuser:x:1000:\naudio:x:29:user\n' }] };
        layout.tag('v1', layout.image([{ entries: busyboxEntries() }, groups], { Cmd: ['sh'], Env: ['PATH=/bin'] }));
        await r.push(layout.dir, 'v1', 'test/groups');
      },
    }));
    await node.client().image.call('PullImage', { image: { image: GROUPS_IMAGE } });
  });

  after(async () => {
    await registry?.stop();
    await node?.destroy();
  });

  it("puts the pod init and the containers in kubelet's cgroupfs pod cgroup, and removes the init's with the pod", async () => {
    const uid = `0f1e2d3c-${process.pid}`;
    const parent = `/kubepods/besteffort/pod${uid}`;
    try {
      const pod = (await rt().call('RunPodSandbox', { config: podConfig('cg', { linux: { cgroup_parent: parent } }) })).pod_sandbox_id;
      const id = await run(pod, 'app');
      const info = await podInfo(node, pod);
      expect(memoryCgroup(info.initPid as number)).to.equal(`${parent}/cradle-init-${pod}`);
      const status = await rt().call('ContainerStatus', { container_id: id, verbose: true });
      const pid = (JSON.parse(status.info.info ?? '{}') as { pid: number }).pid;
      expect(memoryCgroup(pid)).to.equal(`${parent}/cradle-${id}`);
      await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
      for (const h of ['memory', 'pids', 'cpu']) expect(existsSync(join('/sys/fs/cgroup', h, parent, `cradle-init-${pod}`)), h).to.equal(false);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
      for (const h of ['memory', 'pids', 'cpu']) expect(existsSync(join('/sys/fs/cgroup', h, parent, `cradle-${id}`)), h).to.equal(false);
    } finally {
      removeKubepods(parent);
    }
  });

  it('starts the first pods of a new cgroup parent all at once (a v1 cpuset is filled in before anything joins it)', async () => {
    // Each pod its own kubelet pod cgroup under a QoS cgroup none of them finds made: they race to make it.
    const qos = `/kubepods/besteffort${process.pid}`;
    const parents = Array.from({ length: 6 }, (_, i) => `${qos}/pod${i}-${process.pid}`);
    try {
      const pods = await Promise.all(
        parents.map(
          async (parent, i) => (await rt().call('RunPodSandbox', { config: podConfig(`race-${i}`, { linux: { cgroup_parent: parent } }) })).pod_sandbox_id,
        ),
      );
      for (const pod of pods) {
        const info = await podInfo(node, pod);
        expect(memoryCgroup(info.initPid as number)).to.match(new RegExp(`^${qos}/pod\\d-${process.pid}/cradle-init-${pod}$`));
      }
      for (const pod of pods) await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    } finally {
      for (const parent of parents) removeKubepods(parent);
      removeKubepods(qos);
    }
  });

  it("sets the pod's own cgroup limits, the runtime class's overhead included, and refuses what it cannot set", async () => {
    const MiB = 1024n * 1024n;
    const parent = `/kubepods/burstable/pod1a2b3c4d-${process.pid}`;
    const read = (file: string) => readFileSync(join('/sys/fs/cgroup', file), 'utf8').trim();
    try {
      const pod = (await rt().call('RunPodSandbox', { config: podConfig('resize', { linux: { cgroup_parent: parent } }) })).pod_sandbox_id;
      await rt().call('UpdatePodSandboxResources', {
        pod_sandbox_id: pod,
        resources: { cpu_period: 100_000n, cpu_quota: 150_000n, cpu_shares: 1536n, memory_limit_in_bytes: 256n * MiB },
        overhead: { cpu_shares: 102n, memory_limit_in_bytes: 16n * MiB },
      });
      expect(read(`cpu/${parent}/cpu.cfs_quota_us`)).to.equal('150000');
      expect(read(`cpu/${parent}/cpu.shares`)).to.equal('1638');
      expect(read(`memory/${parent}/memory.limit_in_bytes`)).to.equal(String(272n * MiB));
      const info = JSON.parse((await rt().call('PodSandboxStatus', { pod_sandbox_id: pod, verbose: true })).info.info ?? '{}') as { resources?: object };
      expect(info.resources).to.deep.equal({ cpuShares: 1638, cpuQuota: 150_000, cpuPeriod: 100_000, memoryLimit: 272 * 2 ** 20 });

      const tiny = await grpcFailure(rt().call('UpdatePodSandboxResources', { pod_sandbox_id: pod, resources: { memory_limit_in_bytes: 1n } }));
      expect(tiny.code).to.equal(Code.INVALID_ARGUMENT);
      expect(tiny.details).to.contain('resources.memory_limit_in_bytes');
      expect(read(`memory/${parent}/memory.limit_in_bytes`)).to.equal(String(272n * MiB));
      expect((await grpcFailure(rt().call('UpdatePodSandboxResources', { pod_sandbox_id: 'f'.repeat(64) }))).code).to.equal(Code.NOT_FOUND);
      const plain = (await rt().call('RunPodSandbox', { config: podConfig('no-parent') })).pod_sandbox_id;
      const noCgroup = await grpcFailure(rt().call('UpdatePodSandboxResources', { pod_sandbox_id: plain, resources: { cpu_shares: 2n } }));
      expect(noCgroup.code).to.equal(Code.FAILED_PRECONDITION);
      expect(noCgroup.details).to.contain('cgroup_parent');
      await rt().call('RemovePodSandbox', { pod_sandbox_id: plain });
      await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
      const stopped = await grpcFailure(rt().call('UpdatePodSandboxResources', { pod_sandbox_id: pod, resources: { cpu_shares: 2n } }));
      expect(stopped.code).to.equal(Code.FAILED_PRECONDITION);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    } finally {
      removeKubepods(parent);
    }
  });

  it("reports the identity a container's process has, with the image's groups under Merge and without them under Strict", async () => {
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('groups') })).pod_sandbox_id;
    const user = async (name: string, policy: SupplementalGroupsPolicy) => {
      const id = await run(pod, name, {
        image: { image: GROUPS_IMAGE },
        linux: { security_context: { run_as_user: { value: 1000n }, supplemental_groups: [4242n], supplemental_groups_policy: policy } },
      });
      return (await rt().call('ContainerStatus', { container_id: id })).status?.user?.linux;
    };
    // The image lists user 1000 in group 29 (audio).
    expect(await user('merge', SupplementalGroupsPolicy.Merge)).to.deep.equal({ uid: 1000n, gid: 1000n, supplemental_groups: [29n, 4242n] });
    expect(await user('strict', SupplementalGroupsPolicy.Strict)).to.deep.equal({ uid: 1000n, gid: 1000n, supplemental_groups: [4242n] });
    expect((await rt().call('Status', {})).features?.supplemental_groups_policy).to.equal(true);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  describe('mount propagation', () => {
    let pod: string;
    let source: string;

    before(async () => {
      source = await sharedSource(node);
      pod = (await rt().call('RunPodSandbox', { config: podConfig('propagation') })).pod_sandbox_id;
    });

    for (const [mode, hostToContainer, containerToHost] of PROPAGATION_CASES) {
      it(`${mode}: host to container ${hostToContainer ? 'yes' : 'no'}, container to host ${containerToHost ? 'yes' : 'no'}`, async () => {
        expect(await propagationSeen(node, pod, source, mode)).to.deep.equal({ hostToContainer, containerToHost });
      });
    }

    it('refuses bidirectional propagation from a private mount, naming what to make shared', async () => {
      const privateDir = join(node.dir, 'not-shared');
      mkdirSync(privateDir);
      const err = await grpcFailure(
        rt().call('CreateContainer', {
          pod_sandbox_id: pod,
          config: {
            metadata: { name: 'refused' },
            image: { image: BUSYBOX_IMAGE },
            mounts: [{ container_path: '/x', host_path: privateDir, propagation: MountPropagation.PROPAGATION_BIDIRECTIONAL }],
            linux: { security_context: { privileged: true } },
          },
        }),
      );
      expect(err.code).to.equal(Code.FAILED_PRECONDITION);
      expect(err.details).to.contain('make-rshared');
    });
  });
});
