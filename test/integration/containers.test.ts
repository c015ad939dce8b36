import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { ContainerState } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { bridgeConflist, writeConflist } from '../support/cni.js';
import { grpcFailure } from '../support/grpc.js';
import { busyboxEntries, OciLayout } from '../support/oci-image.js';
import { podConfig } from '../support/pods.js';
import { TestRegistry } from '../support/registry.js';
import { TestNode, testConfigToml } from '../support/test-node.js';
import { waitFor } from '../support/wait.js';

const IMAGE = '127.0.0.1:5000/test/busybox:v1';

describe('containers', function () {
  this.timeout(120_000);
  let node: TestNode;
  let registry: TestRegistry;
  let pod: string;
  let logDir: string;

  const rt = () => node.client().runtime;
  const create = async (name: string, extra: Init<ContainerConfig> = {}) =>
    (await rt().call('CreateContainer', { pod_sandbox_id: pod, config: { metadata: { name }, image: { image: IMAGE }, log_path: `${name}/0.log`, ...extra } })).container_id;
  const status = (id: string) => rt().call('ContainerStatus', { container_id: id });
  const exited = (id: string) => waitFor(`container ${id.slice(0, 12)} to exit`, async () => ((await status(id)).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined), 20_000);
  const logLines = (name: string) =>
    existsSync(join(logDir, name, '0.log'))
      ? readFileSync(join(logDir, name, '0.log'), 'utf8')
          .split('\n')
          .filter(Boolean)
      : [];

  before(async () => {
    node = await TestNode.create();
    writeFileSync(node.configPath, testConfigToml(node.dir) + '\n[image]\ninsecure_registries = ["127.0.0.1:5000"]\n');
    writeConflist(node, bridgeConflist(node));
    registry = new TestRegistry(node);
    await registry.start();
    const layout = new OciLayout(join(node.dir, 'layout'));
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'], Env: ['PATH=/bin', 'FROM_IMAGE=yes'] }));
    await registry.push(layout.dir, 'v1', 'test/busybox');
    await node.startDaemon();
    await node.client().image.call('PullImage', { image: { image: IMAGE } });
    logDir = join(node.dir, 'logs');
    pod = (await rt().call('RunPodSandbox', { config: podConfig('ctr-pod', { log_directory: logDir }) })).pod_sandbox_id;
  });

  after(async () => {
    await registry?.stop();
    await node?.destroy();
  });

  it('runs a container through its whole lifecycle, with CRI logs and the exit code', async () => {
    const id = await create('hello', { command: ['sh', '-c', 'echo out-line; echo err-line >&2; exit 3'] });
    const created = await status(id);
    expect(created.status?.state).to.equal(ContainerState.CONTAINER_CREATED);
    expect((created.status?.created_at ?? 0n) > 1_700_000_000_000_000_000n).to.equal(true);
    expect(created.status?.started_at).to.equal(0n);
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const s = (await status(id)).status;
    expect(s?.exit_code).to.equal(3);
    expect(s?.reason).to.equal('Error');
    expect((s?.finished_at ?? 0n) > (s?.started_at ?? 0n)).to.equal(true);
    expect((s?.started_at ?? 0n) > (s?.created_at ?? 0n)).to.equal(true);
    expect(s?.image_ref).to.match(/^sha256:/);
    expect(s?.log_path).to.equal(join(logDir, 'hello', '0.log'));
    const lines = logLines('hello');
    expect(lines.some((l) => /^\S+ stdout F out-line$/.test(l))).to.equal(true);
    expect(lines.some((l) => /^\S+ stderr F err-line$/.test(l))).to.equal(true);
    const again = await grpcFailure(rt().call('StartContainer', { container_id: id }));
    expect(again.code).to.equal(Code.FAILED_PRECONDITION);
    await rt().call('RemoveContainer', { container_id: id });
    expect((await grpcFailure(status(id))).code).to.equal(Code.NOT_FOUND);
  });

  it('merges image and container env, and reports Completed for exit 0', async () => {
    const id = await create('env', { command: ['sh', '-c', 'echo "$FROM_IMAGE $FROM_POD"'], envs: [{ key: 'FROM_POD', value: Buffer.from('also') }] });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    expect((await status(id)).status?.reason).to.equal('Completed');
    expect(logLines('env').some((l) => l.endsWith('stdout F yes also'))).to.equal(true);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('stops a running container with its stop signal, then SIGKILL after the grace period', async () => {
    const graceful = await create('graceful', { command: ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while true; do sleep 0.1; done'] });
    const stubborn = await create('stubborn', { command: ['sh', '-c', 'trap "" TERM; while true; do sleep 0.1; done'] });
    for (const id of [graceful, stubborn]) await rt().call('StartContainer', { container_id: id });
    await waitFor('running', async () => ((await status(stubborn)).status?.state === ContainerState.CONTAINER_RUNNING ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    await rt().call('StopContainer', { container_id: graceful, timeout: 10n });
    expect((await status(graceful)).status?.exit_code).to.equal(0);
    expect(logLines('graceful').some((l) => l.endsWith('got-term'))).to.equal(true);
    const t0 = Date.now();
    await rt().call('StopContainer', { container_id: stubborn, timeout: 1n });
    expect(Date.now() - t0).to.be.within(900, 8000);
    expect((await status(stubborn)).status?.exit_code).to.equal(137);
    await rt().call('StopContainer', { container_id: stubborn, timeout: 1n }); // idempotent
    for (const id of [graceful, stubborn]) await rt().call('RemoveContainer', { container_id: id });
  });

  it('runs as the requested user and with the capabilities asked for', async () => {
    const id = await create('whoami', {
      command: ['sh', '-c', 'id; grep CapBnd /proc/self/status'],
      linux: { security_context: { run_as_user: { value: 1000n }, capabilities: { drop_capabilities: ['ALL'] } } },
    });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    const out = logLines('whoami').join('\n');
    expect(out).to.match(/uid=1000\(user\) gid=1000\(user\)/);
    expect(out).to.match(/CapBnd:\s+0000000000000000/);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('refuses writes to a read-only root filesystem', async () => {
    const id = await create('ro', { command: ['sh', '-c', 'touch /newfile && echo wrote || echo refused'], linux: { security_context: { readonly_rootfs: true } } });
    await rt().call('StartContainer', { container_id: id });
    await exited(id);
    expect(logLines('ro').some((l) => l.endsWith('refused'))).to.equal(true);
    await rt().call('RemoveContainer', { container_id: id });
  });

  it('refuses a missing host path and a log path outside the pod log directory, leaving nothing', async () => {
    const rootfsMounts = () => node.mountinfo().split('\n').filter((l) => l.includes(join(node.dir, 'root', 'containers')));
    const before = rootfsMounts();
    const missing = await grpcFailure(create('badmount', { mounts: [{ container_path: '/data', host_path: '/nonexistent/cradle' }] }));
    expect(missing.code).to.equal(Code.INVALID_ARGUMENT);
    expect(missing.details).to.contain('/nonexistent/cradle');
    const escape = await grpcFailure(create('badlog', { log_path: '../../etc/evil.log' }));
    expect(escape.code).to.equal(Code.INVALID_ARGUMENT);
    expect((await rt().call('ListContainers', { filter: { label_selector: {} } })).containers.filter((c) => ['badmount', 'badlog'].includes(c.metadata?.name ?? ''))).to.deep.equal([]);
    expect(rootfsMounts()).to.deep.equal(before);
  });

  it('lists containers by pod, state and label, and keeps them across a daemon restart', async () => {
    const sleeper = await create('sleeper', { command: ['sleep', '300'], labels: { role: 'sleeper' } });
    await rt().call('StartContainer', { container_id: sleeper });
    const running = await rt().call('ListContainers', { filter: { pod_sandbox_id: pod, state: { state: ContainerState.CONTAINER_RUNNING } } });
    expect(running.containers.map((c) => c.id)).to.deep.equal([sleeper]);
    expect((await rt().call('ListContainers', { filter: { label_selector: { role: 'sleeper' } } })).containers).to.have.length(1);
    await node.stopDaemon('SIGKILL');
    await node.startDaemon();
    expect((await status(sleeper)).status?.state).to.equal(ContainerState.CONTAINER_RUNNING);
    await rt().call('StopContainer', { container_id: sleeper, timeout: 0n });
    expect((await status(sleeper)).status?.exit_code).to.equal(137);
    await rt().call('RemoveContainer', { container_id: sleeper });
  });

  it('stops and removes a pod\'s containers with the pod', async () => {
    const id = await create('with-pod', { command: ['sleep', '300'] });
    await rt().call('StartContainer', { container_id: id });
    await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
    expect((await status(id)).status?.state).to.equal(ContainerState.CONTAINER_EXITED);
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    expect((await grpcFailure(status(id))).code).to.equal(Code.NOT_FOUND);
  });
});
