import { chmodSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { status as Code } from '@grpc/grpc-js';
import { expect } from 'chai';
import { CriClient } from '../../cri/client.js';
import { ContainerState } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { BUSYBOX_IMAGE, busyboxNode } from '../support/busybox-node.js';
import { grpcFailure } from '../support/grpc.js';
import { containerCgroups, findLeaks } from '../support/leaks.js';
import { waitFor } from '../support/wait.js';
import { podConfig } from '../support/pods.js';
import type { TestRegistry } from '../support/registry.js';
import type { TestNode } from '../support/test-node.js';

/** Thirty days: beyond what a Node timer holds (about 24.8 days). */
const MONTH_SECONDS = 30n * 24n * 3600n;

describe('data safety', function () {
  this.timeout(300_000);
  let node: TestNode;
  let registry: TestRegistry;
  let cgroupBaseline: Set<string>;

  const rt = () => node.client().runtime;
  const img = () => node.client().image;
  const runPod = async (name: string, handler = '') => (await rt().call('RunPodSandbox', { config: podConfig(name), runtime_handler: handler })).pod_sandbox_id;
  const create = async (pod: string, name: string, extra: Init<ContainerConfig> = {}) =>
    (
      await rt().call('CreateContainer', {
        pod_sandbox_id: pod,
        config: { metadata: { name }, image: { image: BUSYBOX_IMAGE }, command: ['sleep', '300'], log_path: `${name}.log`, ...extra },
      })
    ).container_id;
  const state = async (id: string) => (await rt().call('ContainerStatus', { container_id: id })).status?.state;
  const daemonRss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${node.daemon.pid}/status`, 'utf8'))?.[1] ?? 0) * 1024;

  before(async () => {
    cgroupBaseline = containerCgroups();
    ({ node, registry } = await busyboxNode({
      // A runtime that is slow to create, as on a busy node: runc behind a script that waits 3 s first.
      tables: '[runtimes.slow]\npath = "__DIR__/slow-runc"\n',
      beforeStart: async (n) => {
        const wrapper = join(n.dir, 'slow-runc');
        writeFileSync(wrapper, '#!/bin/sh\nfor a in "$@"; do if [ "$a" = create ]; then sleep 3; break; fi; done\nexec runc "$@"\n');
        chmodSync(wrapper, 0o755);
        writeFileSync(n.configPath, readFileSync(n.configPath, 'utf8').replace('__DIR__', n.dir));
      },
    }));
  });

  after(async () => {
    await registry?.stop();
    await node?.destroy();
  });

  afterEach(async () => {
    for (const p of (await rt().call('ListPodSandbox', {})).items) await rt().call('RemovePodSandbox', { pod_sandbox_id: p.id });
    expect(await findLeaks(node, cgroupBaseline)).to.deep.equal([]);
  });

  it('creates containers when the runtime takes seconds to create them, as on a busy node', async () => {
    const pod = await runPod('slow-pod', 'slow');
    const ids = await Promise.all(['one', 'two'].map((n) => create(pod, n)));
    for (const id of ids) {
      expect(await state(id)).to.equal(ContainerState.CONTAINER_CREATED);
      await rt().call('StartContainer', { container_id: id });
      expect(await state(id)).to.equal(ContainerState.CONTAINER_RUNNING);
    }
    // The daemon keeps no descriptor per container for conmon's sync pipe. The removal finishes in the
    // background (its `runc delete` has pipes of its own), so the count must come back down, not be down at once.
    const open = () => readdirSync(`/proc/${node.daemon.pid}/fd`).length;
    const fds = open();
    const third = await create(pod, 'three');
    await rt().call('RemoveContainer', { container_id: third });
    await waitFor(`the daemon's descriptors to come back to ${fds}`, () => (open() <= fds ? true : undefined), 60_000).catch((err: unknown) => {
      throw new Error(`${String(err)}: ${readdirSync(`/proc/${node.daemon.pid}/fd`).length} open`);
    });
  });

  it("keeps a running container's files when its image is removed, across restarts and reboots", async () => {
    const pod = await runPod('keeper');
    const id = await create(pod, 'keeper');
    await rt().call('StartContainer', { container_id: id });
    const imageId = (await img().call('ImageStatus', { image: { image: BUSYBOX_IMAGE } })).image?.id as string;
    for (const ref of [BUSYBOX_IMAGE, imageId]) {
      const refused = await grpcFailure(img().call('RemoveImage', { image: { image: ref } }));
      expect(refused.code, ref).to.equal(Code.FAILED_PRECONDITION);
      expect(refused.details).to.contain(id);
    }
    const ls = await rt().call('ExecSync', { container_id: id, cmd: ['ls', '/bin'], timeout: 30n });
    expect(Buffer.from(ls.stdout).toString()).to.contain('busybox');
    // The reference survives a crash of the daemon and a reboot of the node.
    await node.stopDaemon('SIGKILL');
    await node.startDaemon();
    expect((await grpcFailure(img().call('RemoveImage', { image: { image: imageId } }))).code).to.equal(Code.FAILED_PRECONDITION);
    await node.reboot();
    await registry.stop();
    await registry.start();
    await node.startDaemon();
    expect(await state(id)).to.equal(ContainerState.CONTAINER_EXITED);
    expect((await grpcFailure(img().call('RemoveImage', { image: { image: imageId } }))).code).to.equal(Code.FAILED_PRECONDITION);
    await rt().call('RemoveContainer', { container_id: id });
    await img().call('RemoveImage', { image: { image: imageId } });
    expect(readdirSync(join(node.dir, 'root', 'images', 'layers'))).to.deep.equal([]);
    await img().call('PullImage', { image: { image: BUSYBOX_IMAGE } });
  });

  it('brings labels and annotations back unchanged after a restart, whatever their keys', async () => {
    const tricky = { $bigint: '1', $$x: 'two dollars', plain: 'yes' };
    const pod = (await rt().call('RunPodSandbox', { config: podConfig('tricky', { labels: { $bigint: '1' }, annotations: tricky }) })).pod_sandbox_id;
    const id = await create(pod, 'tricky', { labels: { $bigint: '1' }, annotations: tricky });
    await node.stopDaemon('SIGKILL');
    await node.startDaemon();
    const pods = (await rt().call('ListPodSandbox', { filter: { label_selector: { $bigint: '1' } } })).items;
    expect(pods.map((p) => p.id)).to.deep.equal([pod]);
    expect(pods[0]?.annotations).to.deep.equal(tricky);
    const containers = (await rt().call('ListContainers', { filter: { label_selector: { $bigint: '1' } } })).containers;
    expect(containers.map((c) => c.id)).to.deep.equal([id]);
    expect(containers[0]?.annotations).to.deep.equal(tricky);
  });

  it('exits promptly on SIGTERM while containers run, and finds them running again', async () => {
    const pod = await runPod('term');
    const id = await create(pod, 'term');
    await rt().call('StartContainer', { container_id: id });
    // A generous bound: the daemon used to stay up forever, held by its process watches.
    const status = await Promise.race([node.stopDaemon('SIGTERM', 120_000), new Promise((r) => setTimeout(() => r('still running'), 60_000))]);
    expect(status).to.deep.equal({ code: 0, signal: null });
    await node.startDaemon();
    expect(await state(id)).to.equal(ContainerState.CONTAINER_RUNNING);
  });

  it('caps ExecSync output, keeping the daemon small, and says what a missing command is', async () => {
    const pod = await runPod('chatty');
    const id = await create(pod, 'chatty');
    await rt().call('StartContainer', { container_id: id });
    const before = daemonRss();
    const lines = await rt().call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'yes | head -c 20000000'], timeout: 120n });
    expect(lines.stdout.length).to.equal(16 * 1024 * 1024);
    expect(lines.exit_code).to.equal(0);
    const big = await rt().call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'head -c 300000000 /dev/zero'], timeout: 120n });
    expect(big.stdout.length).to.equal(16 * 1024 * 1024);
    // It grew by 1.6 GB for the first command alone when output went through a log file.
    expect(daemonRss() - before).to.be.below(200 * 1024 * 1024);
    const missing = await rt().call('ExecSync', { container_id: id, cmd: ['no-such-command'], timeout: 30n });
    expect(missing.exit_code).to.equal(127);
    expect(Buffer.from(missing.stderr).toString()).to.contain('no-such-command');
  });

  it('honours durations longer than a timer holds instead of firing at once', async () => {
    const pod = await runPod('patient');
    const id = await create(pod, 'patient', { command: ['sh', '-c', 'trap "sleep 1; exit 0" TERM; while true; do sleep 0.1; done'] });
    await rt().call('StartContainer', { container_id: id });
    const done = await rt().call('ExecSync', { container_id: id, cmd: ['sh', '-c', 'sleep 1; echo finished'], timeout: MONTH_SECONDS });
    expect(Buffer.from(done.stdout).toString()).to.equal('finished\n');
    await rt().call('StopContainer', { container_id: id, timeout: MONTH_SECONDS });
    // Stopped by its own trap (exit 0), not SIGKILLed (137) after a grace period that overflowed.
    expect((await rt().call('ContainerStatus', { container_id: id })).status?.exit_code).to.equal(0);
  });

  it('answers a call whose deadline is a month away, instead of DEADLINE_EXCEEDED at once', async () => {
    const client = new CriClient(node.socket);
    try {
      const month = Number(MONTH_SECONDS) * 1000;
      expect((await client.runtime.call('Version', {}, { timeoutMs: month })).runtime_name).to.equal('cradle');
      const pod = (await client.runtime.call('RunPodSandbox', { config: podConfig('far-deadline') }, { timeoutMs: month })).pod_sandbox_id;
      expect(pod).to.match(/^[0-9a-f]{64}$/);
    } finally {
      client.close();
    }
  });

  it('leaves no conmon socket link behind a removed container or its execs', async () => {
    const pod = await runPod('links');
    const id = await create(pod, 'links');
    await rt().call('StartContainer', { container_id: id });
    await rt().call('ExecSync', { container_id: id, cmd: ['true'], timeout: 30n });
    const sockets = join(node.dir, 'run', 'sockets');
    // Named by the id, cut short where the socket dir's path is long.
    expect(readdirSync(sockets).filter((n) => id.startsWith(n))).to.have.length(1);
    await rt().call('RemoveContainer', { container_id: id });
    // The answer comes once the container is retired; its files go right after.
    // readdir, not exists: a dangling link does not exist to existsSync.
    await waitFor('the removal to finish', () => (readdirSync(sockets).length === 0 ? true : undefined), 60_000);
  });
});
