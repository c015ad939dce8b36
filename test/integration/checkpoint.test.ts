import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import { busyboxSuite, startBusybox } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { podConfig } from '../support/pods.js';

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

  it('sweeps what a killed daemon was gathering for a pod checkpoint at its next start', async () => {
    const scratch = join(suite.node.dir, 'run', 'checkpoints', 'pod-0123456789ab-x');
    mkdirSync(scratch, { recursive: true });
    writeFileSync(join(scratch, 'pod.dump'), '{}');
    await suite.node.stopDaemon('SIGKILL');
    await suite.node.startDaemon();
    expect(existsSync(join(suite.node.dir, 'run', 'checkpoints'))).to.equal(false);
  });
});
