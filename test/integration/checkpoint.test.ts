import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import { busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { encodeRecord } from '../../core/record-store.js';
import { containerCgroups, settledLeaks } from '../support/leaks.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';

/**
 * Checkpoints on the host lane, where CRIU cannot run (not installed, or
 * its `criu check` refuses the kernel): each refusal names the caller's
 * mistake or what the host lacks, and leaves the container running and no
 * archive behind. The VM lane checkpoints for real (test/vm/checkpoint).
 */
describe('checkpoint requests where CRIU cannot run', function () {
  this.timeout(120_000);
  const suite = busyboxSuite();
  const rt = () => suite.rt();

  it('answers each request with the right code, naming what is wrong or missing, and changes nothing', async () => {
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('ckpt', { log_directory: join(suite.node.dir, 'logs') }) })).pod_sandbox_id;
    const id = await startBusybox(suite.node, pod, 'counter', { command: ['sleep', '600'] });
    const archive = join(suite.node.dir, 'checkpoints', 'counter.tar');
    const ckpt = (container_id: string, location: string) => grpcFailure(rt().call('CheckpointContainer', { container_id, location, timeout: 30n }));

    expect((await ckpt('f'.repeat(64), archive)).code).to.equal(Code.NOT_FOUND);
    const relative = await ckpt(id, 'counter.tar');
    expect([relative.code, relative.details]).to.deep.equal([Code.INVALID_ARGUMENT, 'location "counter.tar" must be an absolute path for the archive']);
    const missing = await ckpt(id, archive);
    expect(missing.code).to.equal(Code.FAILED_PRECONDITION);
    expect(missing.details).to.match(/CRIU/i);
    const podWide = await grpcFailure(rt().call('CheckpointPod', { pod_sandbox_id: pod, output_path: join(suite.node.dir, 'checkpoints', 'pod.tar') }));
    expect([podWide.code, podWide.details]).to.deep.equal([missing.code, missing.details]);
    expect(existsSync(archive)).to.equal(false);
    expect(existsSync(join(suite.node.dir, 'checkpoints', 'pod.tar'))).to.equal(false);

    await rt().call('StopContainer', { container_id: id, timeout: 0n });
    expect((await ckpt(id, archive)).code).to.equal(Code.FAILED_PRECONDITION);
    expect((await rt().call('ContainerStatus', { container_id: id })).status?.state).to.equal(ContainerState.CONTAINER_EXITED);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
  });

  it('refuses restores with the right code, checking the archive before the host, and leaves nothing behind', async () => {
    const cgroupBaseline = containerCgroups();
    const dir = join(suite.node.dir, 'restores');
    mkdirSync(dir, { recursive: true });
    // An archive laid out as CheckpointPod writes one, with a container checkpoint inside (CRIU's images stand-ins).
    const container = join(dir, 'c');
    mkdirSync(join(container, 'checkpoint'), { recursive: true });
    writeFileSync(join(container, 'checkpoint', 'inventory.img'), 'not really CRIU');
    writeFileSync(
      join(container, 'config.dump'),
      encodeRecord({ id: 'c'.repeat(64), imageId: `sha256:${'1'.repeat(64)}`, spec: { name: 'counter', mounts: [] } }),
    );
    await run('tar', ['-c', '-C', container, '-f', join(container, 'rootfs-diff.tar'), 'checkpoint']);
    await run('tar', ['-c', '-C', container, '-f', join(dir, 'container.tar'), '.']);
    const pod = join(dir, 'p');
    mkdirSync(pod);
    writeFileSync(join(pod, 'pod.dump'), encodeRecord({ id: 'p'.repeat(64), createdAt: 1n, spec: { name: 'old' }, containers: ['c'.repeat(64)] }));
    await run('cp', [join(dir, 'container.tar'), join(pod, `${'c'.repeat(64)}.tar`)]);
    await run('tar', ['-c', '-C', pod, '-f', join(dir, 'pod.tar'), '.']);
    writeFileSync(join(dir, 'text'), 'not an archive');
    const podsBefore = (await rt().call('ListPodSandbox', {})).items.length;

    const restorePod = async (checkpoint_path: string, extra: object = {}) => grpcFailure(rt().call('RestorePod', { checkpoint_path, ...extra }));
    expect((await restorePod('pod.tar')).code).to.equal(Code.INVALID_ARGUMENT);
    expect((await restorePod(join(dir, 'none.tar'))).code).to.equal(Code.NOT_FOUND);
    const text = await restorePod(join(dir, 'text'));
    expect(text.code).to.equal(Code.INVALID_ARGUMENT);
    expect(text.details).to.contain('is not a readable tar archive');
    const notPod = await restorePod(join(dir, 'container.tar'));
    expect(notPod.code).to.equal(Code.INVALID_ARGUMENT);
    expect(notPod.details).to.contain('is not a pod checkpoint archive');
    const unknown = await restorePod(join(dir, 'pod.tar'), { container_configs: [{ metadata: { name: 'other' }, image: { image: 'busybox' } }] });
    expect([unknown.code, unknown.details]).to.deep.equal([Code.INVALID_ARGUMENT, 'container_configs name containers the checkpoint does not have: other']);
    const host = await restorePod(join(dir, 'pod.tar'));
    expect(host.code).to.equal(Code.FAILED_PRECONDITION);
    expect(host.details).to.match(/criu/i);

    // A single container, restored by CreateContainer with the archive as its image.
    const sandbox = (await rt().call('RunPodSandbox', { config: podConfig('restore-into') })).pod_sandbox_id;
    const create = await grpcFailure(
      rt().call('CreateContainer', {
        pod_sandbox_id: sandbox,
        config: { metadata: { name: 'counter' }, image: { image: join(dir, 'container.tar') } },
        sandbox_config: podConfig('restore-into'),
      }),
    );
    expect(create.code).to.equal(Code.FAILED_PRECONDITION);
    expect(create.details).to.match(/^cannot restore from ".*container\.tar": .*criu/i);
    expect((await rt().call('ListContainers', { filter: { pod_sandbox_id: sandbox } })).containers).to.deep.equal([]);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: sandbox });

    expect((await rt().call('ListPodSandbox', {})).items.length).to.equal(podsBefore);
    expect(await settledLeaks(suite.node, cgroupBaseline, 'after the refused restores')).to.deep.equal([]);
  });

  it('sweeps what a killed daemon was gathering for a pod checkpoint at its next start', async () => {
    const scratch = join(suite.node.dir, 'run', 'checkpoints', 'pod-0123456789ab-x');
    mkdirSync(scratch, { recursive: true });
    writeFileSync(join(scratch, 'pod.dump'), '{}');
    await suite.node.stopDaemon('SIGKILL');
    await suite.node.startDaemon();
    expect(existsSync(join(suite.node.dir, 'run', 'checkpoints'))).to.equal(false);
  });
});
