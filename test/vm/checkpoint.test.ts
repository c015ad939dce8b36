import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import { BUSYBOX_IMAGE, busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { containerCgroups, settledLeaks } from '../support/leaks.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';
import { waitFor } from '../support/wait.js';

/** Checkpoints and restores for real: the guest's kernel and Debian's CRIU, through runc (Debian's crun has no CRIU). */
describe('checkpoints with CRIU', function () {
  this.timeout(300_000);
  const suite = busyboxSuite({ topLevel: 'cgroup_manager = "systemd"\n', startTimeoutMs: 60_000 });
  const rt = () => suite.rt();
  const count = async (id: string) =>
    Number((await rt().call('ExecSync', { container_id: id, cmd: ['cat', '/count'], timeout: 30n })).stdout.toString().trim() || '-1');
  /** The restored counter runs, counting on past `from`: a fresh start would count from 0. */
  const goesOnFrom = async (id: string, from: number) => {
    const first = await count(id);
    await waitFor('the restored counter to count on', async () => ((await count(id)) > first ? true : undefined), 30_000, 100);
    expect(await count(id)).to.be.greaterThan(from);
  };
  let cgroupBaseline: Set<string>;
  before(() => {
    cgroupBaseline = containerCgroups();
  });
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
      // Far enough that a restore which ran the command again (from 0) could not pass for one that went on.
      await waitFor('the counter to count', async () => ((await count(id)) > 30 ? true : undefined), 60_000, 100);
      const archive = join(suite.node.dir, 'checkpoints', `${handler}.tar`);
      await rt().call('CheckpointContainer', { container_id: id, location: archive, timeout: 120n });

      expect(existsSync(archive)).to.equal(true);

      // Killed while the archive is written: nothing is left beside where it was going, and the container runs on.
      const killedAt = join(suite.node.dir, 'checkpoints', `${handler}-killed.tar`);
      await suite.node.crashAt('Checkpoint/archive-written', () => rt().call('CheckpointContainer', { container_id: id, location: killedAt, timeout: 120n }));
      expect(readdirSync(join(suite.node.dir, 'checkpoints')).filter((n) => n.startsWith(`${handler}-killed`))).to.deep.equal([]);
      expect(await settledLeaks(suite.node, cgroupBaseline, 'after a kill while an archive was written')).to.deep.equal([]);
      const parts = await entries(archive);
      for (const part of ['./config.dump', './spec.dump', './rootfs-diff.tar', './checkpoint/inventory.img']) expect(parts, part).to.include(part);
      await run('tar', ['-xf', archive, '-C', join(suite.node.dir, 'checkpoints'), './rootfs-diff.tar']);
      expect(await entries(join(suite.node.dir, 'checkpoints', 'rootfs-diff.tar'))).to.include('./count');
      const dumped = Number((await run('tar', ['-xOf', join(suite.node.dir, 'checkpoints', 'rootfs-diff.tar'), './count'])).stdout.trim());
      expect(dumped).to.be.greaterThan(30);

      expect((await rt().call('ContainerStatus', { container_id: id })).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);
      const after = await count(id);
      await waitFor('the counter to go on', async () => ((await count(id)) > after ? true : undefined), 30_000, 100);

      const podArchive = join(suite.node.dir, 'checkpoints', `${handler}-pod.tar`);
      await rt().call('CheckpointPod', { pod_sandbox_id: pod, output_path: podArchive });
      expect(await entries(podArchive)).to.include.members(['./pod.dump', `./${id}.tar`]);

      // CreateContainer with the archive as its image, in a new pod: the counter goes on from where it was.
      const into = podConfig(`ckpt-${handler}-restored`, { log_directory: join(suite.node.dir, 'logs') });
      const newPod = (await rt().call('RunPodSandbox', { config: into, runtime_handler: handler })).pod_sandbox_id;
      const restored = (
        await rt().call('CreateContainer', {
          pod_sandbox_id: newPod,
          config: { metadata: { name: 'counter-restored' }, image: { image: archive }, log_path: 'restored.log' },
          sandbox_config: into,
        })
      ).container_id;
      expect((await rt().call('ContainerStatus', { container_id: restored })).status?.state).to.equal(ContainerState.CONTAINER_CREATED);
      await rt().call('StartContainer', { container_id: restored });
      await goesOnFrom(restored, dumped);
      const status = (await rt().call('ContainerStatus', { container_id: restored })).status;
      expect([status?.state, status?.metadata?.name, status?.image?.image]).to.deep.equal([
        ContainerState.CONTAINER_RUNNING,
        'counter-restored',
        BUSYBOX_IMAGE,
      ]);
      // Stopped and removed as any container is; the original runs on beside it.
      await rt().call('StopContainer', { container_id: restored, timeout: 0n });
      expect((await rt().call('ContainerStatus', { container_id: restored })).status?.state).to.equal(ContainerState.CONTAINER_EXITED);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: newPod });
      expect((await rt().call('ContainerStatus', { container_id: id })).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);

      // RestorePod: a new pod from the pod archive, its container running on.
      const bad = await grpcFailure(
        rt().call('RestorePod', {
          checkpoint_path: podArchive,
          config: podConfig(`ckpt-${handler}-bad`),
          container_configs: [{ metadata: { name: 'nobody' }, image: { image: 'x' } }],
        }),
      );
      expect(bad.code).to.equal(Code.INVALID_ARGUMENT);
      // Killed once the container runs: the next start removes the pod with it, so the retry below can have its name.
      await suite.node.crashAt('RestorePod/container-started', () =>
        rt().call('RestorePod', { checkpoint_path: podArchive, config: podConfig(`ckpt-${handler}-pod-restored`), runtime_handler: handler }),
      );
      expect((await rt().call('ListPodSandbox', {})).items.map((p) => p.metadata?.name)).to.not.include(`ckpt-${handler}-pod-restored`);
      expect(await settledLeaks(suite.node, cgroupBaseline, 'after a kill in RestorePod')).to.deep.equal([]);
      const podsBefore = (await rt().call('ListPodSandbox', {})).items.length;
      const answer = await rt().call('RestorePod', {
        checkpoint_path: podArchive,
        config: podConfig(`ckpt-${handler}-pod-restored`),
        runtime_handler: handler,
      });
      expect(answer.restored_containers.map((c) => c.name)).to.deep.equal(['counter']);
      const podRestored = answer.restored_containers[0]?.container_id as string;
      expect((await rt().call('PodSandboxStatus', { pod_sandbox_id: answer.pod_sandbox_id })).status?.metadata?.name).to.equal(`ckpt-${handler}-pod-restored`);
      await goesOnFrom(podRestored, dumped);
      expect((await rt().call('ListPodSandbox', {})).items.length).to.equal(podsBefore + 1);
      await rt().call('RemovePodSandbox', { pod_sandbox_id: answer.pod_sandbox_id });
      await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    });
  }
});
