import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import { busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Checkpoints for real: the guest's kernel and Debian's CRIU, through runc (Debian's crun has no CRIU). */
describe('checkpoints with CRIU', function () {
  this.timeout(300_000);
  const suite = busyboxSuite({ topLevel: 'cgroup_manager = "systemd"\n', startTimeoutMs: 60_000 });
  const rt = () => suite.rt();
  const count = async (id: string) =>
    Number((await rt().call('ExecSync', { container_id: id, cmd: ['cat', '/count'], timeout: 30n })).stdout.toString().trim() || '-1');
  const entries = async (archive: string) => (await run('tar', ['-tf', archive])).stdout.split('\n').filter(Boolean);

  it("crun: refuses with FAILED_PRECONDITION, Debian's crun being built without CRIU", async () => {
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('ckpt-crun'), runtime_handler: 'crun' })).pod_sandbox_id;
    const id = await startBusybox(suite.node, pod, 'sleeper', { command: ['sleep', '600'] });
    const err = await grpcFailure(rt().call('CheckpointContainer', { container_id: id, location: join(suite.node.dir, 'checkpoints', 'crun.tar') }));
    expect(err.code).to.equal(Code.FAILED_PRECONDITION);
    expect(err.details).to.contain('has no checkpoint command');
    expect((await rt().call('ContainerStatus', { container_id: id })).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  for (const handler of ['runc']) {
    it(`${handler}: checkpoints a counting container into an archive, and it goes on counting`, async () => {
      const pod = (
        await rt().call('RunPodSandbox', { config: podConfig(`ckpt-${handler}`, { log_directory: join(suite.node.dir, 'logs') }), runtime_handler: handler })
      ).pod_sandbox_id;
      const id = await startBusybox(suite.node, pod, 'counter', { command: ['sh', '-c', 'i=0; while true; do echo $i > /count; i=$((i+1)); sleep 0.1; done'] });
      await waitFor('the counter to count', async () => ((await count(id)) > 2 ? true : undefined), 30_000, 100);
      const archive = join(suite.node.dir, 'checkpoints', `${handler}.tar`);
      await rt().call('CheckpointContainer', { container_id: id, location: archive, timeout: 120n });

      expect(existsSync(archive)).to.equal(true);
      const parts = await entries(archive);
      for (const part of ['./config.dump', './spec.dump', './rootfs-diff.tar', './checkpoint/inventory.img']) expect(parts, part).to.include(part);
      await run('tar', ['-xf', archive, '-C', join(suite.node.dir, 'checkpoints'), './rootfs-diff.tar']);
      expect(await entries(join(suite.node.dir, 'checkpoints', 'rootfs-diff.tar'))).to.include('./count');

      expect((await rt().call('ContainerStatus', { container_id: id })).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);
      const after = await count(id);
      await waitFor('the counter to go on', async () => ((await count(id)) > after ? true : undefined), 30_000, 100);

      const podArchive = join(suite.node.dir, 'checkpoints', `${handler}-pod.tar`);
      await rt().call('CheckpointPod', { pod_sandbox_id: pod, output_path: podArchive });
      expect(await entries(podArchive)).to.include.members(['./pod.dump', `./${id}.tar`]);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    });
  }
});
