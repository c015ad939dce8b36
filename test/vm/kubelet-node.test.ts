import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { packageRoot } from '../../core/package-info.js';
import { CriClient } from '../../cri/client.js';
import { ContainerState } from '../../cri/generated/api.js';
import type { ContainerConfig } from '../../cri/generated/api.js';
import type { Init } from '../../cri/service-types.js';
import { bridgeConflist, TEST_GATEWAY, writeConflist } from '../support/cni.js';
import { busyboxEntries, OciLayout } from '../support/oci-image.js';
import { podConfig } from '../support/pods.js';
import { run } from '../support/processes.js';
import { TestRegistry } from '../support/registry.js';
import { CRADLE_BIN, TestNode, testConfigToml } from '../support/test-node.js';
import { sleep, waitFor } from '../support/wait.js';

/**
 * A node as an operator and kubelet run it, in the VM lane's guest
 * (systemd as PID 1, pure cgroup v2): Cradle as the systemd unit from
 * packaging/ (network namespace: the test node's, so the pod bridge and
 * hostPort rules stay there), the systemd cgroup driver, crun, and pods
 * under kubelet's slice paths. One pod with two containers, a hostPort,
 * an exec probe loop, a log rotation and an OOM kill, and `systemctl
 * restart cradle` in the middle of it all.
 */

const UNIT = '/run/systemd/system/cradle.service';
const IMAGE = '127.0.0.1:5000/test/busybox:v1';
const MiB = 1024n * 1024n;

describe("a kubelet-shaped node: the systemd unit, the systemd driver, kubelet's slices", function () {
  this.timeout(900_000);
  let node: TestNode;
  let registry: TestRegistry;
  let client: CriClient;
  const rt = () => client.runtime;

  const systemctl = async (...args: string[]) => {
    const r = await run('systemctl', args, { timeoutMs: 120_000 });
    expect(r.code, `systemctl ${args.join(' ')}: ${r.stderr}`).to.equal(0);
  };
  const ready = () =>
    waitFor(
      'cradle to answer Status',
      async () => {
        client?.close();
        client = new CriClient(node.socket);
        const s = await client.runtime.call('Status', {}, { timeoutMs: 10_000 });
        return s.status?.conditions.every((c) => c.status) ? true : undefined;
      },
      180_000,
      500,
    );

  before(async () => {
    node = await TestNode.create();
    writeFileSync(
      node.configPath,
      `cgroup_manager = "systemd"\ndefault_runtime = "crun"\n${testConfigToml(node.dir)}\n[image]\ninsecure_registries = ["127.0.0.1:5000"]\n`,
    );
    writeConflist(node, bridgeConflist(node));
    registry = new TestRegistry(node);
    await registry.start();
    const layout = new OciLayout(join(node.dir, 'layout'));
    layout.tag('v1', layout.image([{ entries: busyboxEntries() }], { Cmd: ['sh'], Env: ['PATH=/bin'] }));
    await registry.push(layout.dir, 'v1', 'test/busybox');
    // The packaged unit as it is, pointed at this checkout and config, in the test node's network namespace.
    const unit = readFileSync(join(packageRoot, 'packaging', 'cradle.service'), 'utf8')
      .replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${CRADLE_BIN} daemon --config ${node.configPath}`)
      .replace('[Service]', `[Service]\nNetworkNamespacePath=/proc/${node.holderPid}/ns/net`);
    writeFileSync(UNIT, unit);
    await systemctl('daemon-reload');
    await systemctl('start', 'cradle.service');
    await ready();
    await client.image.call('PullImage', { image: { image: IMAGE } });
  });

  after(async () => {
    try {
      if (client) for (const p of (await rt().call('ListPodSandbox', {})).items) await rt().call('RemovePodSandbox', { pod_sandbox_id: p.id });
    } finally {
      client?.close();
      await run('systemctl', ['stop', 'cradle.service']);
      rmSync(UNIT, { force: true });
      await run('systemctl', ['daemon-reload']);
      await run('systemctl', ['stop', 'kubepods.slice']);
      await registry?.stop();
      await node?.destroy();
    }
  });

  it('runs a pod through probes, a log rotation, an OOM kill and a restart of the unit', async () => {
    const uid = '5b0c1d2e-3f40-4a5b-8c6d-7e8f90a1b2c3';
    const parent = `/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod${uid.replace(/-/g, '_')}.slice`;
    const logDir = join(node.dir, 'pod-logs');
    const config = podConfig('web', { log_directory: logDir, linux: { cgroup_parent: parent }, port_mappings: [{ container_port: 80, host_port: 8080 }] });
    const pod = (await rt().call('RunPodSandbox', { config: { ...config, metadata: { ...config.metadata, uid } } })).pod_sandbox_id;
    const start = async (name: string, extra: Init<ContainerConfig>) => {
      const id = (
        await rt().call('CreateContainer', {
          pod_sandbox_id: pod,
          config: { metadata: { name }, image: { image: IMAGE }, log_path: `${name}/0.log`, ...extra },
          sandbox_config: config,
        })
      ).container_id;
      await rt().call('StartContainer', { container_id: id });
      return id;
    };
    const web = await start('web', { command: ['sh', '-c', 'mkdir -p /www && echo hello-from-web > /www/index.html && exec httpd -f -p 80 -h /www'] });
    const logger = await start('logger', { command: ['sh', '-c', 'i=0; while true; do echo "line $i"; i=$((i+1)); sleep 0.2; done'] });

    // The hostPort, from the node's side of the bridge.
    const fetch = async () => (await node.exec('busybox', ['wget', '-q', '-O', '-', `http://${TEST_GATEWAY}:8080/`], { timeoutMs: 30_000 })).stdout;
    expect(await waitFor('the hostPort to answer', async () => ((await fetch()).includes('hello-from-web') ? true : undefined), 60_000, 500)).to.equal(true);

    // kubelet's exec probe, every half second, all through what follows.
    let probing = true;
    const probe = { ok: 0, failed: 0, failedWhileUp: 0 };
    let restarting = false;
    const probes = (async () => {
      while (probing) {
        try {
          const r = await rt().call('ExecSync', { container_id: web, cmd: ['cat', '/www/index.html'], timeout: 30n }, { timeoutMs: 60_000 });
          if (r.exit_code === 0) probe.ok++;
          else probe.failed++;
        } catch {
          probe.failed++;
          if (!restarting) probe.failedWhileUp++;
        }
        await sleep(500);
      }
    })();

    // kubelet rotates the log: rename, ReopenContainerLog, and the container writes on into a new file.
    const log = join(logDir, 'logger', '0.log');
    await waitFor('logger output', () => (existsSync(log) && readFileSync(log, 'utf8').includes('line 3') ? true : undefined), 60_000, 200);
    renameSync(log, `${log}.20261202-000000`);
    await rt().call('ReopenContainerLog', { container_id: logger });
    await waitFor(
      'a new log file with new lines',
      () => (existsSync(log) && / stdout F line \d+/.test(readFileSync(log, 'utf8')) ? true : undefined),
      60_000,
      200,
    );

    // systemctl restart: the containers stay (conmon has scopes of its own), the daemon finds them.
    restarting = true;
    await systemctl('restart', 'cradle.service');
    await ready();
    restarting = false;
    for (const id of [web, logger])
      expect((await rt().call('ContainerStatus', { container_id: id })).status?.state, id).to.equal(ContainerState.CONTAINER_RUNNING);
    expect(await fetch()).to.contain('hello-from-web');

    // An OOM kill in the same pod, under the pod's slice.
    const oom = await start('oom', {
      command: ['sh', '-c', 'x=$(head -c 100000000 /dev/zero | tr "\\0" a); echo survived'],
      linux: { resources: { memory_limit_in_bytes: 16n * MiB } },
    });
    await waitFor(
      'the OOM kill',
      async () => ((await rt().call('ContainerStatus', { container_id: oom })).status?.state === ContainerState.CONTAINER_EXITED ? true : undefined),
      120_000,
      500,
    );
    expect((await rt().call('ContainerStatus', { container_id: oom })).status?.reason).to.equal('OOMKilled');

    const okBefore = probe.ok;
    await waitFor('probes after the restart', () => (probe.ok > okBefore + 2 ? true : undefined), 60_000, 200);
    probing = false;
    await probes;
    expect(probe.failedWhileUp, JSON.stringify(probe)).to.equal(0);
    expect(probe.ok).to.be.greaterThan(5);
    // Everything of the pod sits under kubelet's pod slice.
    const slice = join('/sys/fs/cgroup', parent);
    expect(existsSync(join(slice, `cradle-${web}.scope`))).to.equal(true);
    expect(existsSync(join(slice, `cradle-init-${pod}.scope`))).to.equal(true);
    await rt().call('StopPodSandbox', { pod_sandbox_id: pod });
    await rt().call('RemovePodSandbox', { pod_sandbox_id: pod });
    await waitFor('the pod slice to empty', () => (existsSync(join(slice, `cradle-${web}.scope`)) ? undefined : true), 60_000, 500);
  });
});
